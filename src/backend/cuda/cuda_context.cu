// CudaContext and its stream-ordered caching allocator (see cuda_context.h).
#include "backend/cuda/cuda_context.h"

#include <cstdint>
#include <cstring>
#include <limits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_devices.h"
#include "backend/cuda/gemm.h"

namespace nlpf::cuda {

StreamAllocator::StreamAllocator(int device_index, cudaStream_t stream)
    : Allocator(Device{DeviceType::CUDA, device_index}), stream_(stream) {
  NLPF_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool_, device_index));
  // Keep freed memory in the pool (the caching): without this the driver trims the pool at every sync.
  uint64_t threshold = std::numeric_limits<uint64_t>::max();
  NLPF_CUDA_CHECK(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &threshold));
}

void* StreamAllocator::raw_allocate(size_t bytes) {
  void* ptr = nullptr;
  const cudaError_t status = cudaMallocFromPoolAsync(&ptr, bytes, pool_, stream_);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return nullptr;  // Allocator::allocate names the size in its OUT_OF_MEMORY error
  }
  NLPF_CUDA_CHECK(status);
  return ptr;
}

void StreamAllocator::raw_deallocate(void* ptr) {
  // Stream-ordered: the block is reused only by work queued after this point on the stream. Errors are
  // not thrown from here (it runs in destructors); a broken context shows at its next checked call.
  cudaFreeAsync(ptr, stream_);
}

CudaContext::CudaContext(int device_index, size_t workspace_bytes)
    : ExecutionContext(Device{DeviceType::CUDA, device_index}), workspace_bytes_(workspace_bytes) {
  NLPF_CUDA_CHECK(cudaSetDevice(device_index));
  NLPF_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  NLPF_CUDA_CHECK(cublasLtCreate(&cublaslt_));
  NLPF_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessor_count_, cudaDevAttrMultiProcessorCount, device_index));
  allocator_ = std::make_unique<StreamAllocator>(device_index, stream_);
  gemm_plans_ = std::make_unique<GemmPlanCache>();
  workspace_ = allocator_->allocate(workspace_bytes_);
  allocator_->reset_peak();  // the workspace is the context's, not a measured pass's
}

CudaContext::~CudaContext() {
  // Nothing here may throw; the stream is drained first so queued frees land before it goes.
  cudaSetDevice(device_index());
  gemm_plans_.reset();
  if (workspace_ != nullptr) allocator_->deallocate(workspace_, workspace_bytes_);
  cudaStreamSynchronize(stream_);
  for (StagingSlot& slot : staging_) {
    if (slot.done != nullptr) cudaEventDestroy(slot.done);
    if (slot.host != nullptr) cudaFreeHost(slot.host);
  }
  if (cublaslt_ != nullptr) cublasLtDestroy(cublaslt_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void CudaContext::synchronize() { NLPF_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

size_t CudaContext::graph_memory_peak_bytes() const {
  unsigned long long bytes = 0;  // the attribute's type (cuuint64_t)
  NLPF_CUDA_CHECK(cudaDeviceGetGraphMemAttribute(device_index(), cudaGraphMemAttrReservedMemHigh, &bytes));
  return static_cast<size_t>(bytes);
}

void CudaContext::copy_bytes(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) {
  if (bytes == 0) return;
  const cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                            : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  if (kind == cudaMemcpyHostToDevice && bytes <= kStagedUploadBytes) {
    // The caller may free or reuse src when we return, so the bytes go to a pinned slot first; the copy from
    // the slot is queued, and the GPU's earlier work is not waited for (a training step's batch upload).
    StagingSlot& slot = staging_[next_staging_slot_];
    next_staging_slot_ = (next_staging_slot_ + 1) % kStagingSlots;
    if (slot.host == nullptr) {
      NLPF_CUDA_CHECK(cudaMallocHost(&slot.host, kStagedUploadBytes));
      NLPF_CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
    } else {
      NLPF_CUDA_CHECK(cudaEventSynchronize(slot.done));  // the copy out of this slot, kStagingSlots uploads ago
    }
    std::memcpy(slot.host, src, bytes);
    NLPF_CUDA_CHECK(cudaMemcpyAsync(dst, slot.host, bytes, kind, stream_));
    NLPF_CUDA_CHECK(cudaEventRecord(slot.done, stream_));
    return;
  }
  NLPF_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream_));
  // A host source may be freed or reused when we return, a host destination read: wait for those copies.
  if (!dst_on_device || !src_on_device) NLPF_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaContext::fill_zero_bytes(void* dst, size_t bytes) {
  if (bytes > 0) NLPF_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream_));
}

namespace {

class CudaGraph final : public CapturedWork {
 public:
  CudaGraph(cudaGraphExec_t exec, cudaStream_t stream) : exec_(exec), stream_(stream) {}
  ~CudaGraph() override { cudaGraphExecDestroy(exec_); }
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  void replay() override { NLPF_CUDA_CHECK(cudaGraphLaunch(exec_, stream_)); }

 private:
  cudaGraphExec_t exec_;
  cudaStream_t stream_;
};

}  // namespace

std::unique_ptr<CapturedWork> CudaContext::capture(const std::function<void()>& work) {
  // Thread-local mode: other threads' CUDA calls (none today; NVML is not CUDA) do not break the capture.
  NLPF_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  try {
    work();
  } catch (...) {
    cudaGraph_t broken = nullptr;
    cudaStreamEndCapture(stream_, &broken);  // ends the capture so the stream stays usable
    if (broken != nullptr) cudaGraphDestroy(broken);
    cudaGetLastError();
    throw;
  }
  cudaGraph_t graph = nullptr;
  NLPF_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  NLPF_CUDA_CHECK(status);
  return std::make_unique<CudaGraph>(exec, stream_);
}

CudaContext& cuda_context(ExecutionContext& ctx) {
  NLPF_CHECK(ctx.device().type == DeviceType::CUDA, ErrorCode::INTERNAL,
             "a CUDA kernel was handed the CPU's execution context");
  return static_cast<CudaContext&>(ctx);
}

std::unique_ptr<ExecutionContext> make_cuda_context(int device_index) {
  return std::make_unique<CudaContext>(device_index);
}

}  // namespace nlpf::cuda
