// BatchTimer: per-batch latency for the protocol's workloads (PassResult::batch_latencies_ms, p50/p90/p99).
// A pass calls start()/stop() around each batch and finish() once at its end; only finish() may wait for the
// device, so timing a pass adds no synchronisation per batch (CUDA events on the GPU, the steady clock on
// the CPU, where a batch's work is done when its call returns). Make one with make_batch_timer
// (backend/device.h); the start/stop/finish bookkeeping and its errors are shared by every implementation.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace nlpf {

class BatchTimer {
 public:
  virtual ~BatchTimer() = default;

  // Marks the start of the next batch. Throws Error(INTERNAL) while a batch is open.
  void start();
  // Marks the end of the open batch. Throws Error(INTERNAL) when none is open.
  void stop();
  // Waits once for the last batch's end (a no-op on the CPU) and returns each batch's milliseconds in
  // start order; the timer is then empty and ready for the next pass. Throws Error(INTERNAL) while a batch
  // is open, since its end was never marked.
  std::vector<double> finish();
  // Batches stopped since the last finish().
  size_t batches() const { return stopped_; }
  // "steady_clock" or "cuda_events", for messages and metrics.
  virtual std::string source() const = 0;

 protected:
  // Record the start/end of batch `index` (0-based within the pass).
  virtual void record_start(size_t index) = 0;
  virtual void record_stop(size_t index) = 0;
  // Milliseconds of batches 0..count-1 (count >= 1); may wait for the device; then forget them.
  virtual std::vector<double> collect(size_t count) = 0;

 private:
  size_t stopped_ = 0;
  bool open_ = false;
};

// Host wall time from std::chrono::steady_clock (monotonic, never adjusted).
class SteadyBatchTimer : public BatchTimer {
 public:
  std::string source() const override { return "steady_clock"; }

 protected:
  void record_start(size_t index) override;
  void record_stop(size_t index) override;
  std::vector<double> collect(size_t count) override;

 private:
  std::vector<double> start_s_;
  std::vector<double> elapsed_ms_;
};

}  // namespace nlpf
