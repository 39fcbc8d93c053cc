// libcurl downloads with resume, retries, SHA-256 verification and atomic install. One easy handle per
// attempt and no shared state, so threads may download concurrently (curl_global_init runs once).
#include "fetch/download.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <system_error>
#include <thread>

#include "fetch/file_lock.h"
#include "fetch/sha256.h"
#include "nlpf/build_info.h"

namespace nlpf {
namespace fs = std::filesystem;
namespace {

constexpr int kMaxTotalAttempts = 100;  // even attempts that made progress stop somewhere
constexpr int64_t kMaxBackoffMs = 60'000;
constexpr int64_t kMaxRetryAfterMs = 300'000;

void ensure_curl_initialised() {
  // curl_global_init is not thread-safe; a function-local static runs it exactly once.
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  NLPF_CHECK(rc == CURLE_OK, ErrorCode::IO, "libcurl initialisation failed: ", curl_easy_strerror(rc));
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int unit = 0;
  while (bytes >= 1000.0 && unit < 4) {
    bytes /= 1000.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

// A one-line byte counter on stderr: "model.safetensors  120.4 MB / 440.5 MB (27%)  35.2 MB/s".
class ByteProgress {
 public:
  ByteProgress(std::string label, bool enabled) : label_(std::move(label)), enabled_(enabled) {}
  ~ByteProgress() { finish(); }

  void update(int64_t done, int64_t total, int64_t resumed_from) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && done != total) return;
    last_draw_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done - resumed_from) / elapsed : 0.0;
    std::string line = label_ + "  " + human_bytes(static_cast<double>(done));
    if (total > 0) {
      line += " / " + human_bytes(static_cast<double>(total));
      line += " (" + std::to_string(done * 100 / total) + "%)";
    }
    line += "  " + human_bytes(rate) + "/s";
    const size_t width = line.size();
    if (width < last_width_) line.append(last_width_ - width, ' ');
    last_width_ = width;
    std::fprintf(stderr, "\r%s", line.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  void finish() {
    if (drawn_) std::fputc('\n', stderr);
    drawn_ = false;
  }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  size_t last_width_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_;
};

// What one request saw. Headers are tracked per response, because with redirects the hub's own answer
// (the 302 carrying X-Linked-Etag) comes before the CDN's.
struct Transfer {
  CURL* curl = nullptr;
  fs::path partial;
  int64_t offset = 0;  // bytes already in the partial file when the request started
  FILE* file = nullptr;
  bool body_started = false;
  bool to_file = false;
  bool range_mismatch = false;
  int write_errno = 0;
  int64_t received = 0;
  std::string error_body;
  int responses = 0;
  std::string first_etag;
  std::string linked_etag;
  std::string retry_after;
  std::string content_range;
  std::string error_header;  // X-Error-Message, where the hub explains a refusal
  int64_t content_length = -1;
  int64_t total = -1;  // the whole file's size, once known
  ByteProgress* progress = nullptr;
};

int64_t parse_int(std::string_view s) {
  s = trim(s);
  if (s.empty() || s.size() > 18) return -1;
  int64_t value = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

// "bytes START-END/TOTAL" -> START and TOTAL; "bytes */TOTAL" -> START = -1.
bool parse_content_range(std::string_view value, int64_t& start, int64_t& total) {
  value = trim(value);
  if (lower(value.substr(0, 6)) != "bytes ") return false;
  value.remove_prefix(6);
  const size_t slash = value.find('/');
  if (slash == std::string_view::npos) return false;
  total = parse_int(value.substr(slash + 1));
  const std::string_view range = value.substr(0, slash);
  if (range == "*") {
    start = -1;
    return total >= 0;
  }
  const size_t dash = range.find('-');
  if (dash == std::string_view::npos) return false;
  start = parse_int(range.substr(0, dash));
  return start >= 0;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  const std::string_view line = trim(std::string_view(data, bytes));
  if (line.substr(0, 5) == "HTTP/") {
    ++t->responses;
    t->content_range.clear();
    t->retry_after.clear();
    t->content_length = -1;
    return bytes;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return bytes;
  const std::string name = lower(trim(line.substr(0, colon)));
  const std::string value(trim(line.substr(colon + 1)));
  if (name == "etag" && t->responses == 1) t->first_etag = value;
  if (name == "x-linked-etag") t->linked_etag = value;
  if (name == "retry-after") t->retry_after = value;
  if (name == "content-range") t->content_range = value;
  if (name == "content-length") t->content_length = parse_int(value);
  if (name == "x-error-message") t->error_header = value;
  return bytes;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  if (!t->body_started) {
    t->body_started = true;
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200) {
      // A server that ignores Range sends the whole file: start the partial file over.
      t->offset = 0;
      t->total = t->content_length;
      t->file = std::fopen(t->partial.c_str(), "wb");
      t->to_file = true;
    } else if (code == 206) {
      int64_t start = -1;
      int64_t total = -1;
      if (!parse_content_range(t->content_range, start, total) || start != t->offset) {
        t->range_mismatch = true;
        return 0;
      }
      t->total = total;
      t->file = std::fopen(t->partial.c_str(), "ab");
      t->to_file = true;
    }
    if (t->to_file && t->file == nullptr) {
      t->write_errno = errno;
      return 0;
    }
  }
  if (!t->to_file) {
    if (t->error_body.size() < 300) t->error_body.append(data, std::min<size_t>(bytes, 300));
    return bytes;
  }
  if (std::fwrite(data, 1, bytes, t->file) != bytes) {
    t->write_errno = errno;
    return 0;
  }
  t->received += static_cast<int64_t>(bytes);
  return bytes;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->to_file && t->progress) {
    t->progress->update(t->offset + now, total > 0 ? t->offset + total : -1, t->offset);
  }
  return 0;
}

enum class Outcome { DONE, RETRY, RESTART, NOT_FOUND };

struct AttemptResult {
  Outcome outcome = Outcome::RETRY;
  std::string problem;  // for RETRY / RESTART: what went wrong, for the final message
  std::string retry_after;
  bool progressed = false;
  bool unreachable = false;  // connection-level failure: no answer from the server at all
  std::string expected_sha256;
};

bool retryable_curl_error(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

std::string one_line(std::string_view text) {
  std::string out;
  for (char c : trim(text)) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  if (out.size() > 200) out = out.substr(0, 200) + "...";
  return out;
}

int64_t file_size_or_zero(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

AttemptResult attempt_once(const std::string& url, const fs::path& partial, const FetchSettings& settings,
                           const DownloadOptions& options, ByteProgress& progress) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  NLPF_CHECK(curl != nullptr, ErrorCode::IO, url, ": cannot create a libcurl handle");
  Transfer t;
  t.curl = curl.get();
  t.partial = partial;
  t.offset = file_size_or_zero(partial);
  t.progress = &progress;

  curl_slist* headers = nullptr;
  if (options.send_token && !settings.token.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + settings.token).c_str());
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> header_list(headers, curl_slist_free_all);
  char error_buffer[CURL_ERROR_SIZE] = {0};
  const std::string user_agent = std::string("nlpf/") + kVersion;
  const std::string range = std::to_string(t.offset) + "-";
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM timeouts: other threads keep running
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 byte/s for a minute) ends as a timeout, retried and resumed.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  if (t.offset > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());

  const CURLcode rc = curl_easy_perform(c);
  bool flushed = true;
  if (t.file) {
    flushed = std::fflush(t.file) == 0 && ::fsync(::fileno(t.file)) == 0;
    if (!flushed && t.write_errno == 0) t.write_errno = errno;
    std::fclose(t.file);
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);

  AttemptResult result;
  result.retry_after = t.retry_after;
  result.progressed = t.received > 0;
  const std::string linked = sha256_from_etag(t.linked_etag);
  result.expected_sha256 = linked.empty() ? sha256_from_etag(t.first_etag) : linked;
  NLPF_CHECK(t.write_errno == 0, ErrorCode::IO, partial.string(),
             ": write failed: ", std::strerror(t.write_errno));
  if (t.range_mismatch) {
    result.outcome = Outcome::RESTART;
    result.problem = "HTTP 206 for another range than requested (Content-Range: " + t.content_range + ")";
    return result;
  }
  if (rc != CURLE_OK) {
    const std::string detail = std::string("curl error ") + std::to_string(rc) + " (" +
                               (error_buffer[0] ? error_buffer : curl_easy_strerror(rc)) + ")";
    if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY) {
      throw NetworkUnreachable(url + ": " + detail);
    }
    NLPF_CHECK(retryable_curl_error(rc), ErrorCode::IO, url, ": ", detail);
    result.outcome = Outcome::RETRY;
    result.problem = detail;
    result.unreachable = rc == CURLE_COULDNT_CONNECT && t.responses == 0;
    return result;
  }
  const std::string server_says = !t.error_header.empty() ? one_line(t.error_header) : one_line(t.error_body);
  const std::string suffix = server_says.empty() ? std::string() : " (server: " + server_says + ")";
  if (status == 200 || status == 206) {
    if (status == 200 && !t.body_started) {
      // An empty file: no body callback ran, so create it here.
      FILE* empty = std::fopen(partial.c_str(), "wb");
      NLPF_CHECK(empty != nullptr, ErrorCode::IO, partial.string(), ": cannot write: ", std::strerror(errno));
      std::fclose(empty);
      t.total = 0;
    }
    const int64_t have = file_size_or_zero(partial);
    if (t.total >= 0 && have != t.total) {
      result.outcome = Outcome::RETRY;
      result.problem =
          "connection ended after " + std::to_string(have) + " of " + std::to_string(t.total) + " bytes";
      return result;
    }
    result.outcome = Outcome::DONE;
    return result;
  }
  if (status == 416) {
    // The partial file may already hold everything (a drop just before the end): then it is done.
    int64_t start = -1;
    int64_t total = -1;
    const bool parsed = parse_content_range(t.content_range, start, total);
    result.outcome = parsed && total == t.offset ? Outcome::DONE : Outcome::RESTART;
    result.problem = "HTTP 416 for Range: bytes=" + range;
    return result;
  }
  if (status == 404 || status == 410) {
    result.outcome = Outcome::NOT_FOUND;
    result.problem = "HTTP " + std::to_string(status) + " (not found)" + suffix;
    return result;
  }
  if (status == 401 || status == 403) {
    const std::string hint =
        settings.token.empty() || !options.send_token
            ? "no token was sent: the model may be gated or private (set HF_TOKEN, or HF_TOKEN=... in .env), "
              "or the name is wrong"
            : "the token from " + settings.token_source + " was refused or lacks access";
    NLPF_THROW(ErrorCode::IO, url, ": HTTP ", status, status == 401 ? " (unauthorized)" : " (forbidden)",
               suffix, "; ", hint);
  }
  if (status == 429 || (status >= 500 && status <= 599)) {
    result.outcome = Outcome::RETRY;
    result.problem = "HTTP " + std::to_string(status) + suffix;
    return result;
  }
  NLPF_THROW(ErrorCode::IO, url, ": unexpected HTTP ", status, suffix);
}

void remove_quietly(const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

}  // namespace

int64_t retry_delay_ms(int retry, int64_t backoff_ms, std::string_view retry_after) {
  int64_t delay = std::max<int64_t>(backoff_ms, 0);
  for (int i = 1; i < retry && delay < kMaxBackoffMs; ++i) delay *= 2;
  delay = std::min(delay, kMaxBackoffMs);
  retry_after = trim(retry_after);
  if (retry_after.empty()) return delay;
  int64_t server_ms = -1;
  const int64_t seconds = parse_int(retry_after);
  if (seconds >= 0) {
    server_ms = seconds * 1000;
  } else {
    const std::string date(retry_after);
    const time_t when = curl_getdate(date.c_str(), nullptr);
    if (when != -1)
      server_ms = std::max<int64_t>(0, (static_cast<int64_t>(when) - std::time(nullptr)) * 1000);
  }
  return std::max(delay, std::min(server_ms, kMaxRetryAfterMs));
}

DownloadResult download_file(const std::string& url, const fs::path& destination, const fs::path& lock_path,
                             const FetchSettings& settings, const DownloadOptions& options) {
  // The last line of defence of offline mode: no request is ever made.
  NLPF_CHECK(!settings.offline, ErrorCode::IO, url, ": downloads are off (", settings.offline_reason,
             "); not fetching ", destination.string());
  ensure_curl_initialised();
  const std::string label = options.label.empty() ? destination.filename().string() : options.label;
  FileLock lock(lock_path, destination.string());
  std::error_code ec;
  if (fs::exists(destination, ec)) {
    return {DownloadStatus::ALREADY_PRESENT, file_size_or_zero(destination), std::string()};
  }
  fs::create_directories(destination.parent_path(), ec);
  NLPF_CHECK(!ec, ErrorCode::IO, destination.parent_path().string(),
             ": cannot create directory: ", ec.message());
  const fs::path partial = destination.string() + ".incomplete";
  ByteProgress progress(label, settings.show_progress && ::isatty(STDERR_FILENO));

  std::string expected_sha256;
  int failures = 0;  // consecutive attempts without progress
  for (int attempt = 1;; ++attempt) {
    AttemptResult result = attempt_once(url, partial, settings, options, progress);
    if (!result.expected_sha256.empty()) expected_sha256 = result.expected_sha256;
    if (result.outcome == Outcome::DONE) break;
    if (result.outcome == Outcome::NOT_FOUND) {
      progress.finish();
      remove_quietly(partial);
      if (options.missing_ok) return {DownloadStatus::NOT_FOUND, 0, std::string()};
      NLPF_THROW(ErrorCode::IO, url, ": ", result.problem, "; ", label, " does not exist there");
    }
    if (result.outcome == Outcome::RESTART) remove_quietly(partial);
    failures = result.progressed ? 1 : failures + 1;
    if (failures >= settings.max_attempts || attempt >= kMaxTotalAttempts) {
      progress.finish();
      std::error_code exists_ec;
      const bool kept = fs::exists(partial, exists_ec);
      const std::string message =
          url + ": " + result.problem + " (gave up after " + std::to_string(attempt) + " attempts" +
          (kept ? "; " + partial.string() + " is kept and resumed next time)" : std::string(")"));
      if (result.unreachable) throw NetworkUnreachable(message);
      NLPF_THROW(ErrorCode::IO, message);
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(retry_delay_ms(failures, settings.backoff_ms, result.retry_after)));
  }
  progress.finish();

  DownloadResult result;
  result.status = DownloadStatus::INSTALLED;
  result.bytes = file_size_or_zero(partial);
  if (!expected_sha256.empty()) {
    const std::string actual = sha256_file_hex(partial);
    if (actual != expected_sha256) {
      remove_quietly(partial);
      NLPF_THROW(ErrorCode::IO, url, ": SHA-256 mismatch: the server's ETag says ", expected_sha256, ", the ",
                 result.bytes, " bytes received hash to ", actual, "; nothing installed");
    }
    result.sha256 = actual;
  }
  fs::rename(partial, destination, ec);
  NLPF_CHECK(!ec, ErrorCode::IO, destination.string(), ": cannot rename into place: ", ec.message());
  return result;
}

}  // namespace nlpf
