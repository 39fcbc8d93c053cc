// SHA-256 through OpenSSL's EVP interface (libcrypto), as lowercase hex: what the hub's LFS ETags hold.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace nlpf {

// Hex digest of a whole file, read in chunks; throws Error(IO) naming the file when it cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);
std::string sha256_hex(std::string_view bytes);

// The SHA-256 an ETag header holds, lowercased, or "" when it holds none: quotes and a weak "W/" prefix
// are stripped, and only exactly 64 hex digits count (a 40-digit git blob SHA-1 is not a SHA-256).
std::string sha256_from_etag(std::string_view etag);

}  // namespace nlpf
