// CudaEventBatchTimer: per-batch device time from CUDA events (cudaEventElapsedTime, ~0.5 us resolution).
// Events on one stream complete in order, so waiting on the last batch's end event covers the whole pass.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/event_timer.h"
#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace nlpf::cuda {
namespace {

class CudaEventBatchTimer : public BatchTimer {
 public:
  CudaEventBatchTimer(int device_index, cudaStream_t stream) : device_index_(device_index), stream_(stream) {
    NLPF_CUDA_CHECK(cudaSetDevice(device_index_));
  }
  ~CudaEventBatchTimer() override {
    for (auto& [begin, end] : events_) {
      cudaEventDestroy(begin);  // errors ignored: a destructor cannot report
      cudaEventDestroy(end);
    }
  }
  CudaEventBatchTimer(const CudaEventBatchTimer&) = delete;
  CudaEventBatchTimer& operator=(const CudaEventBatchTimer&) = delete;

  std::string source() const override { return "cuda_events"; }

 protected:
  void record_start(size_t index) override {
    while (events_.size() <= index) {
      // Created on first use of a batch slot, outside any timed interval of later passes.
      cudaEvent_t begin = nullptr;
      cudaEvent_t end = nullptr;
      NLPF_CUDA_CHECK(cudaEventCreate(&begin));
      const cudaError_t status = cudaEventCreate(&end);
      if (status != cudaSuccess) cudaEventDestroy(begin);
      NLPF_CUDA_CHECK(status);
      events_.emplace_back(begin, end);
    }
    NLPF_CUDA_CHECK(cudaEventRecord(events_[index].first, stream_));
  }
  void record_stop(size_t index) override {
    NLPF_CUDA_CHECK(cudaEventRecord(events_[index].second, stream_));
  }
  std::vector<double> collect(size_t count) override {
    NLPF_CUDA_CHECK(cudaEventSynchronize(events_[count - 1].second));
    std::vector<double> out(count);
    for (size_t i = 0; i < count; ++i) {
      float ms = 0.0f;
      NLPF_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i].first, events_[i].second));
      out[i] = ms;
    }
    return out;
  }

 private:
  int device_index_;
  cudaStream_t stream_;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> events_;  // (start, end) per batch slot
};

__global__ void spin_kernel(uint64_t nanoseconds) {
  // %globaltimer counts nanoseconds on every SM alike, unlike clock64(), whose rate follows the SM clock.
  uint64_t start = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  for (uint64_t now = start; now - start < nanoseconds;) {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  }
}

}  // namespace

std::unique_ptr<BatchTimer> make_event_batch_timer(int device_index, void* stream) {
  return std::make_unique<CudaEventBatchTimer>(device_index, static_cast<cudaStream_t>(stream));
}

void enqueue_spin(int device_index, double microseconds, void* stream) {
  NLPF_CHECK(microseconds >= 0.0, ErrorCode::INVALID_ARGUMENT, "spin kernel: duration must be >= 0 us, got ",
             microseconds);
  NLPF_CUDA_CHECK(cudaSetDevice(device_index));
  spin_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<uint64_t>(microseconds * 1e3));
  NLPF_CUDA_CHECK(cudaGetLastError());
}

void synchronize(int device_index) {
  NLPF_CUDA_CHECK(cudaSetDevice(device_index));
  NLPF_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace nlpf::cuda
