// Terminal progress line: '\r' redraws padded over the previous text, at most every 100 ms.
#include "text/progress.h"

#include <unistd.h>

#include <cmath>
#include <utility>

namespace nlpf {
namespace {
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
}  // namespace

Progress::Progress(std::string label, int64_t total, bool enabled, std::string unit)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  finish();
}

void Progress::update(int64_t n) {
  done_ += n;
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < kRedrawInterval) return;
  last_draw_ = now;
  draw(/*final_line=*/false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(/*final_line=*/true);
}

void Progress::draw(bool final_line) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string line = format_line(label_, done_, total_, elapsed, unit_, /*with_eta=*/!final_line);
  if (final_line) line += " in " + format_duration(elapsed);
  const size_t width = line.size();
  if (width < last_width_) line.append(last_width_ - width, ' ');  // erase the longer previous line
  last_width_ = width;
  std::fprintf(stderr, "\r%s%s", line.c_str(), final_line ? "\n" : "");
  std::fflush(stderr);
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  char buffer[48];
  if (s >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  }
  return buffer;
}

std::string Progress::format_line(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                                  const std::string& unit, bool with_eta) {
  std::string line = label + " " + std::to_string(done);
  char buffer[64];
  if (total > 0) {
    std::snprintf(buffer, sizeof(buffer), "/%lld (%.1f%%)", static_cast<long long>(total),
                  100.0 * static_cast<double>(done) / static_cast<double>(total));
    line += buffer;
  }
  if (elapsed_s > 0 && done > 0) {
    const double rate = static_cast<double>(done) / elapsed_s;
    std::snprintf(buffer, sizeof(buffer), " %.*f %s/s", rate < 100 ? 1 : 0, rate, unit.c_str());
    line += buffer;
    if (with_eta && total > done) line += " ETA " + format_duration(static_cast<double>(total - done) / rate);
  }
  return line;
}

}  // namespace nlpf
