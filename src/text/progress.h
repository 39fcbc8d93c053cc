// A one-line terminal progress reporter (done/total, rate, ETA) for long loops: tokenizing, training,
// evaluation. It draws on stderr only when enabled and stderr is a terminal, so logs and pipes stay
// clean; redraws are rate-limited to about 10 per second, so update() is cheap to call per item.
// Not thread-safe: call it from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace nlpf {

class Progress {
 public:
  // `unit` names what is counted in the rate ("ex" gives "ex/s"). total <= 0 means unknown (no ETA).
  Progress(std::string label, int64_t total, bool enabled, std::string unit = "ex");
  ~Progress();  // finishes the line if finish() was not called
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(int64_t n = 1);
  // Draws the final state and ends the line; later calls do nothing.
  void finish();

  bool enabled() const { return enabled_; }
  int64_t done() const { return done_; }

  // The text of one line (without '\r' or newline): "label 1200/67349 (1.8%) 5321 ex/s ETA 0:12".
  static std::string format_line(const std::string& label, int64_t done, int64_t total, double elapsed_s,
                                 const std::string& unit, bool with_eta = true);
  // M:SS, or H:MM:SS from an hour on.
  static std::string format_duration(double seconds);

 private:
  void draw(bool final_line);

  std::string label_;
  std::string unit_;
  int64_t total_;
  int64_t done_ = 0;
  bool enabled_;
  bool finished_ = false;
  size_t last_width_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace nlpf
