// CudaContext: the ExecutionContext of one CUDA device (backend/context.h): a non-blocking stream, a
// cuBLASLt handle with its workspace, and a stream-ordered caching allocator (cudaMallocFromPoolAsync on the
// device's default pool with its release threshold raised, so freed blocks stay cached for reuse instead of
// going back to the driver at each synchronisation; CUDA graphs can capture its allocations). Its current and
// peak bytes are peak_gpu_memory_mb. Kernels get their handles here: cuda_context(ctx).stream().
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "backend/context.h"

namespace nlpf::cuda {

class GemmPlanCache;  // backend/cuda/gemm.h

class StreamAllocator final : public Allocator {
 public:
  StreamAllocator(int device_index, cudaStream_t stream);

 protected:
  void* raw_allocate(size_t bytes) override;
  void raw_deallocate(void* ptr) override;

 private:
  cudaStream_t stream_;
  cudaMemPool_t pool_;
};

class CudaContext final : public ExecutionContext {
 public:
  static constexpr size_t kDefaultWorkspaceBytes = size_t{32} << 20;  // cuBLASLt's recommendation for Hopper
  explicit CudaContext(int device_index, size_t workspace_bytes = kDefaultWorkspaceBytes);
  ~CudaContext() override;

  Allocator& allocator() override { return *allocator_; }
  void synchronize() override;
  void* native_stream() const override { return stream_; }
  void copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) override;
  void fill_zero_bytes(void* dst, size_t bytes) override;
  std::unique_ptr<CapturedWork> capture(const std::function<void()>& work) override;
  size_t graph_memory_peak_bytes() const override;

  int device_index() const { return device().index; }
  cudaStream_t stream() const { return stream_; }
  cublasLtHandle_t cublaslt() const { return cublaslt_; }
  void* workspace() const { return workspace_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  int multiprocessor_count() const { return multiprocessor_count_; }
  GemmPlanCache& gemm_plans() { return *gemm_plans_; }

 private:
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t cublaslt_ = nullptr;
  std::unique_ptr<StreamAllocator> allocator_;
  void* workspace_ = nullptr;  // from allocator_, held for the context's life
  size_t workspace_bytes_ = 0;
  int multiprocessor_count_ = 0;
  std::unique_ptr<GemmPlanCache> gemm_plans_;

  // Host-to-device uploads of at most kStagedUploadBytes (a training batch's ids, mask and labels) are copied
  // into one of these pinned slots and queued without waiting for the GPU: the slot is reused only after the
  // event recorded behind its copy has passed, kStagingSlots uploads later. Larger uploads (weights) wait.
  static constexpr size_t kStagedUploadBytes = size_t{256} << 10;
  static constexpr size_t kStagingSlots = 8;
  struct StagingSlot {
    void* host = nullptr;        // pinned, kStagedUploadBytes
    cudaEvent_t done = nullptr;  // recorded after the slot's last copy
  };
  StagingSlot staging_[kStagingSlots];
  size_t next_staging_slot_ = 0;
};

// ctx as a CudaContext; INTERNAL when ctx is another device's (an op dispatched to CUDA with a CPU context).
CudaContext& cuda_context(ExecutionContext& ctx);

}  // namespace nlpf::cuda
