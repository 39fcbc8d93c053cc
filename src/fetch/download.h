// One file over HTTP(S) into the cache with libcurl: resumed with Range from <name>.incomplete after a
// drop, retried with exponential backoff on 429/5xx and dropped connections (Retry-After honoured),
// checked against the SHA-256 the server's ETag holds (X-Linked-Etag first: the hub's LFS digest), and
// installed by rename, so the final name only ever holds a complete, verified file. A flock() on a lock
// file serialises concurrent downloads of one file (threads or processes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.h"
#include "fetch/settings.h"

namespace nlpf {

// The server could not be reached at all (name not resolved, connection refused after retries): callers
// that know what was being fetched turn it into the offline advice (--model DIR, --data-dir DIR).
class NetworkUnreachable : public Error {
 public:
  explicit NetworkUnreachable(std::string message) : Error(ErrorCode::IO, std::move(message)) {}
};

enum class DownloadStatus { INSTALLED, ALREADY_PRESENT, NOT_FOUND };

struct DownloadOptions {
  std::string label;        // the name in progress lines ("model.safetensors")
  bool missing_ok = false;  // a 404 returns NOT_FOUND instead of throwing
  bool send_token = true;   // only hub requests carry the token, never a third-party server's
};

struct DownloadResult {
  DownloadStatus status = DownloadStatus::NOT_FOUND;
  int64_t bytes = 0;
  std::string sha256;  // the verified digest; empty when the server gave none to check against
};

// Downloads `url` to `destination` (its folder is created), holding the lock `lock_path` meanwhile. A
// destination that already exists is complete by construction and is left alone. Throws Error(IO) with
// the URL and the HTTP status or curl error, NetworkUnreachable when the host cannot be reached, and
// refuses (nothing installed, partial removed) a file whose SHA-256 differs from the ETag's.
DownloadResult download_file(const std::string& url, const std::filesystem::path& destination,
                             const std::filesystem::path& lock_path, const FetchSettings& settings,
                             const DownloadOptions& options);

// Milliseconds to wait before retry number `retry` (1-based): backoff_ms * 2^(retry-1), capped at a
// minute, or the server's Retry-After (seconds or an HTTP date) when that is longer, capped at 5 minutes.
int64_t retry_delay_ms(int retry, int64_t backoff_ms, std::string_view retry_after);

}  // namespace nlpf
