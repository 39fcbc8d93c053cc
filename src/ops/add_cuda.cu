// The elementwise sum on CUDA (add_cuda.h), f32: 16-byte vectors where every pointer is 16-byte aligned,
// single elements for the tail and for unaligned views. out may alias a or b: each element is read before it
// is written, by the same thread. Memory-bound: two reads and one write per element.
#include "ops/add_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/float_convert.cuh"

namespace nlpf::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerSm = 16;  // grid-stride loops over at most this many blocks per SM

// out [N] = a [N] + b [N]; float4 vectors [0, vectors), then the tail [4 vectors, N).
__global__ void __launch_bounds__(kThreads)
    add_forward_kernel(float* out, const float* a, const float* b, int64_t vectors, int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t i = first; i < vectors; i += stride) {
    const float4 av = reinterpret_cast<const float4*>(a)[i];
    const float4 bv = reinterpret_cast<const float4*>(b)[i];
    reinterpret_cast<float4*>(out)[i] = make_float4(av.x + bv.x, av.y + bv.y, av.z + bv.z, av.w + bv.w);
  }
  for (int64_t i = vectors * 4 + first; i < N; i += stride) out[i] = a[i] + b[i];
}

}  // namespace

void add_forward(ExecutionContext& ctx, float* out, const float* a, const float* b, int64_t N) {
  NLPF_CHECK(N >= 0, ErrorCode::INVALID_ARGUMENT, "add_forward (cuda): N = ", N);
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const int64_t vectors = aligned16(out) && aligned16(a) && aligned16(b) ? N / 4 : 0;
  const int64_t items = std::max(vectors, N - vectors * 4);  // per-thread steps of the longer loop
  const auto blocks = static_cast<unsigned>(std::min<int64_t>(
      (items + kThreads - 1) / kThreads, static_cast<int64_t>(cuda.multiprocessor_count()) * kBlocksPerSm));
  add_forward_kernel<<<blocks, kThreads, 0, cuda.stream()>>>(out, a, b, vectors, N);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
