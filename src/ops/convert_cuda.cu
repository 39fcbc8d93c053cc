// ops::convert_many on CUDA (convert_cuda.h): one launch per table of up to kMaxEntries tensors; blockIdx.y
// picks the tensor, the blocks of x walk it with a grid stride, 4 values at a time where src and dst allow
// (16-byte loads, 8-byte stores), the rest one by one.
#include "ops/convert_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"
#include "core/error.h"

namespace nlpf::cuda {
namespace {

constexpr int kMaxEntries = 64;
constexpr int kThreads = 256;
constexpr int kBlocksPerEntry = 64;  // x blocks per tensor: a bert-base weight (2.4M values) in ~37 steps

struct ConvertTable {
  void* dst[kMaxEntries];
  const float* src[kMaxEntries];
  int64_t n[kMaxEntries];
  int64_t vectors[kMaxEntries];  // 4-value vectors before the tail (0 where a pointer is unaligned)
};

template <typename T>
__global__ void __launch_bounds__(kThreads) convert_many_kernel(const ConvertTable table) {
  const int e = static_cast<int>(blockIdx.y);
  T* dst = static_cast<T*>(table.dst[e]);
  const float* src = table.src[e];
  const int64_t n = table.n[e], vectors = table.vectors[e];
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t i = first; i < vectors; i += stride) {
    store4(dst + 4 * i, reinterpret_cast<const float4*>(src)[i]);
  }
  for (int64_t i = vectors * 4 + first; i < n; i += stride) dst[i] = from_float<T>(src[i]);
}

template <typename T>
void launch(CudaContext& ctx, std::span<const ConvertEntry> entries, DType dtype) {
  for (size_t begin = 0; begin < entries.size(); begin += kMaxEntries) {
    const size_t count = std::min<size_t>(kMaxEntries, entries.size() - begin);
    ConvertTable table{};
    for (size_t i = 0; i < count; ++i) {
      const ConvertEntry& entry = entries[begin + i];
      const bool aligned = aligned16(entry.src) && aligned4(entry.dst, dtype);
      table.dst[i] = entry.dst;
      table.src[i] = entry.src;
      table.n[i] = entry.n;
      table.vectors[i] = aligned ? entry.n / 4 : 0;
    }
    const dim3 grid(kBlocksPerEntry, static_cast<unsigned>(count));
    convert_many_kernel<T><<<grid, kThreads, 0, ctx.stream()>>>(table);
    NLPF_CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

void convert_many(ExecutionContext& ctx, std::span<const ConvertEntry> entries, DType dtype) {
  if (entries.empty()) return;
  CudaContext& cuda = cuda_context(ctx);
  switch (dtype) {
    case DType::BF16:
      return launch<__nv_bfloat16>(cuda, entries, dtype);
    case DType::F16:
      return launch<__half>(cuda, entries, dtype);
    default:
      NLPF_THROW(ErrorCode::UNSUPPORTED, "convert_many (cuda): dtype ", dtype_name(dtype),
                 ", expected bf16 or f16");
  }
}

}  // namespace nlpf::cuda
