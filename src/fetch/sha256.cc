// SHA-256 with EVP_MD_CTX (one context per call, so concurrent downloads each hash on their own).
#include "fetch/sha256.h"

#include <openssl/evp.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"

namespace nlpf {
namespace {

struct MdContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using MdContext = std::unique_ptr<EVP_MD_CTX, MdContextDeleter>;

MdContext new_sha256_context(const std::string& what) {
  MdContext context(EVP_MD_CTX_new());
  NLPF_CHECK(context && EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) == 1, ErrorCode::INTERNAL,
             what, ": cannot initialise SHA-256 (libcrypto)");
  return context;
}

std::string finish_hex(EVP_MD_CTX* context, const std::string& what) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  NLPF_CHECK(EVP_DigestFinal_ex(context, digest, &length) == 1, ErrorCode::INTERNAL, what,
             ": SHA-256 failed (libcrypto)");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  MdContext context = new_sha256_context("sha256_hex");
  NLPF_CHECK(EVP_DigestUpdate(context.get(), bytes.data(), bytes.size()) == 1, ErrorCode::INTERNAL,
             "SHA-256 update failed (libcrypto)");
  return finish_hex(context.get(), "sha256_hex");
}

std::string sha256_file_hex(const std::filesystem::path& path) {
  FILE* file = std::fopen(path.c_str(), "rb");
  NLPF_CHECK(file != nullptr, ErrorCode::IO, path.string(),
             ": cannot open for hashing: ", std::strerror(errno));
  std::unique_ptr<FILE, int (*)(FILE*)> closer(file, std::fclose);
  MdContext context = new_sha256_context(path.string());
  std::vector<char> buffer(1 << 20);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), file)) > 0) {
    NLPF_CHECK(EVP_DigestUpdate(context.get(), buffer.data(), n) == 1, ErrorCode::INTERNAL, path.string(),
               ": SHA-256 update failed (libcrypto)");
  }
  NLPF_CHECK(!std::ferror(file), ErrorCode::IO, path.string(), ": read failed while hashing");
  return finish_hex(context.get(), path.string());
}

std::string sha256_from_etag(std::string_view etag) {
  while (!etag.empty() && std::isspace(static_cast<unsigned char>(etag.front()))) etag.remove_prefix(1);
  while (!etag.empty() && std::isspace(static_cast<unsigned char>(etag.back()))) etag.remove_suffix(1);
  if (etag.substr(0, 2) == "W/") etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  if (etag.size() != 64) return std::string();
  std::string hex;
  for (char c : etag) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::string();
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return hex;
}

}  // namespace nlpf
