// tanh and its backward from the saved output on CUDA (tanh_cuda.h), f32, element-wise: 16-byte vectors
// where every pointer is 16-byte aligned, single elements for the tail and unaligned views. In place allowed
// (each element is read before it is written, by the same thread). tanhf is within 2 ulp of the CPU's
// std::tanh.
#include "ops/tanh_cuda.h"

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

// out [N] = tanh(x [N]); float4 vectors [0, vectors), then the tail.
__global__ void __launch_bounds__(kThreads)
    tanh_forward_kernel(float* out, const float* x, int64_t vectors, int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t i = first; i < vectors; i += stride) {
    const float4 v = reinterpret_cast<const float4*>(x)[i];
    reinterpret_cast<float4*>(out)[i] = make_float4(tanhf(v.x), tanhf(v.y), tanhf(v.z), tanhf(v.w));
  }
  for (int64_t i = vectors * 4 + first; i < N; i += stride) out[i] = tanhf(x[i]);
}

// dx [N] (=) = dout [N] (1 - out [N]^2); float4 vectors [0, vectors), then the tail.
__global__ void __launch_bounds__(kThreads)
    tanh_backward_kernel(float* dx, const float* dout, const float* out, int64_t vectors, int64_t N) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t i = first; i < vectors; i += stride) {
    const float4 d = reinterpret_cast<const float4*>(dout)[i];
    const float4 y = reinterpret_cast<const float4*>(out)[i];
    reinterpret_cast<float4*>(dx)[i] = make_float4(d.x * (1.0f - y.x * y.x), d.y * (1.0f - y.y * y.y),
                                                   d.z * (1.0f - y.z * y.z), d.w * (1.0f - y.w * y.w));
  }
  for (int64_t i = vectors * 4 + first; i < N; i += stride) dx[i] = dout[i] * (1.0f - out[i] * out[i]);
}

// Blocks for `items` grid-stride steps (items > 0): enough to cover them, at most kBlocksPerSm per SM.
unsigned grid_size(const CudaContext& ctx, int64_t items) {
  return static_cast<unsigned>(std::min<int64_t>(
      (items + kThreads - 1) / kThreads, static_cast<int64_t>(ctx.multiprocessor_count()) * kBlocksPerSm));
}

}  // namespace

void tanh_forward(ExecutionContext& ctx, float* out, const float* x, int64_t N) {
  NLPF_CHECK(N >= 0, ErrorCode::INVALID_ARGUMENT, "tanh_forward (cuda): N = ", N);
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const int64_t vectors = aligned16(out) && aligned16(x) ? N / 4 : 0;
  tanh_forward_kernel<<<grid_size(cuda, std::max(vectors, N - vectors * 4)), kThreads, 0, cuda.stream()>>>(
      out, x, vectors, N);
  NLPF_CUDA_CHECK_LAUNCH();
}

void tanh_backward(ExecutionContext& ctx, float* dx, const float* dout, const float* out, int64_t N) {
  NLPF_CHECK(N >= 0, ErrorCode::INVALID_ARGUMENT, "tanh_backward (cuda): N = ", N);
  if (N == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  const int64_t vectors = aligned16(dx) && aligned16(dout) && aligned16(out) ? N / 4 : 0;
  tanh_backward_kernel<<<grid_size(cuda, std::max(vectors, N - vectors * 4)), kThreads, 0, cuda.stream()>>>(
      dx, dout, out, vectors, N);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
