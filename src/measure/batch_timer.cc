// BatchTimer's shared bookkeeping and the steady-clock implementation.
#include "measure/batch_timer.h"

#include <chrono>

#include "core/error.h"

namespace nlpf {

void BatchTimer::start() {
  NLPF_CHECK(!open_, ErrorCode::INTERNAL, "batch timer (", source(), "): start() while batch ", stopped_ + 1,
             " of this pass is still open (stop() missing)");
  record_start(stopped_);
  open_ = true;
}

void BatchTimer::stop() {
  NLPF_CHECK(open_, ErrorCode::INTERNAL, "batch timer (", source(), "): stop() with no open batch (",
             stopped_, " batch(es) stopped since the last finish())");
  record_stop(stopped_);
  open_ = false;
  ++stopped_;
}

std::vector<double> BatchTimer::finish() {
  NLPF_CHECK(!open_, ErrorCode::INTERNAL, "batch timer (", source(), "): finish() while batch ", stopped_ + 1,
             " is still open (stop() missing)");
  if (stopped_ == 0) return {};
  std::vector<double> out = collect(stopped_);
  NLPF_CHECK(out.size() == stopped_, ErrorCode::INTERNAL, "batch timer (", source(), "): ", out.size(),
             " latencies for ", stopped_, " batches");
  stopped_ = 0;
  return out;
}

namespace {

double steady_now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void SteadyBatchTimer::record_start(size_t index) {
  start_s_.resize(index + 1);
  start_s_[index] = steady_now_s();
}

void SteadyBatchTimer::record_stop(size_t index) {
  const double now = steady_now_s();
  elapsed_ms_.resize(index + 1);
  elapsed_ms_[index] = (now - start_s_[index]) * 1e3;
}

std::vector<double> SteadyBatchTimer::collect(size_t count) {
  std::vector<double> out(elapsed_ms_.begin(), elapsed_ms_.begin() + static_cast<std::ptrdiff_t>(count));
  start_s_.clear();
  elapsed_ms_.clear();
  return out;
}

}  // namespace nlpf
