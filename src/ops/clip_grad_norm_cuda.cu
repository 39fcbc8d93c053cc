// Gradient-norm clipping on CUDA (clip_grad_norm_cuda.h): a two-pass sum of squares in double (partial sums
// per block of each array, then one block over all partials, both in a fixed order: no atomics, the same bits
// at every run) and an in-place scale.
#include "ops/clip_grad_norm_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "core/tensor.h"

namespace nlpf::cuda {
namespace {

constexpr int kThreads = 256;                                  // a power of two (tree reduction)
constexpr int64_t kElementsPerBlock = int64_t{kThreads} * 16;  // per block before the grid is capped
constexpr int64_t kMaxBlocks = 1024;                           // per array

int64_t blocks_for(int64_t N) {
  return std::min(kMaxBlocks, (N + kElementsPerBlock - 1) / kElementsPerBlock);
}

// sums [kThreads] in shared memory reduced in a fixed tree order; the total in sums[0]. Every thread calls
// it.
__device__ void block_sum(double* sums) {
  __syncthreads();
  for (int offset = kThreads / 2; offset > 0; offset /= 2) {
    if (static_cast<int>(threadIdx.x) < offset) sums[threadIdx.x] += sums[threadIdx.x + offset];
    __syncthreads();
  }
}

// partial [gridDim.x] (=) the sums of squares of x [N] over a grid-stride split (element i to block
// (i / kThreads) % gridDim.x); grid blocks_for(N), kThreads threads.
__global__ void sum_squares_partial_kernel(double* __restrict__ partial, const float* __restrict__ x,
                                           int64_t N) {
  __shared__ double sums[kThreads];
  double sum = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < N; i += stride) {
    const double value = x[i];
    sum += value * value;
  }
  sums[threadIdx.x] = sum;
  block_sum(sums);
  if (threadIdx.x == 0) partial[blockIdx.x] = sums[0];
}

// total (=) the sum of partial [P]; one block of kThreads threads.
__global__ void sum_partials_kernel(double* __restrict__ total, const double* __restrict__ partial,
                                    int64_t P) {
  __shared__ double sums[kThreads];
  double sum = 0;
  for (int64_t i = threadIdx.x; i < P; i += kThreads) sum += partial[i];
  sums[threadIdx.x] = sum;
  block_sum(sums);
  if (threadIdx.x == 0) *total = sums[0];
}

// x [N] *= scale.
__global__ void scale_inplace_kernel(float* __restrict__ x, int64_t N, float scale) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < N; i += stride)
    x[i] *= scale;
}

}  // namespace

double sum_squares(ExecutionContext& base, std::span<const float* const> arrays,
                   std::span<const int64_t> sizes) {
  NLPF_CHECK(arrays.size() == sizes.size(), ErrorCode::INTERNAL, "sum_squares (cuda): ", arrays.size(),
             " arrays but ", sizes.size(), " sizes");
  CudaContext& ctx = cuda_context(base);
  int64_t P = 0;
  for (const int64_t N : sizes) P += blocks_for(N);
  // Stream-ordered scratch: the total, then the partial sums of every array one after the other.
  Buffer scratch(ctx.allocator(), static_cast<size_t>(P + 1) * sizeof(double));
  double* total = static_cast<double*>(scratch.data());
  double* partial = total + 1;
  int64_t offset = 0;
  for (size_t i = 0; i < arrays.size(); ++i) {
    const int64_t blocks = blocks_for(sizes[i]);
    if (blocks == 0) continue;
    sum_squares_partial_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream()>>>(
        partial + offset, arrays[i], sizes[i]);
    NLPF_CUDA_CHECK_LAUNCH();
    offset += blocks;
  }
  sum_partials_kernel<<<1, kThreads, 0, ctx.stream()>>>(total, partial, P);
  NLPF_CUDA_CHECK_LAUNCH();
  double host = 0;
  ctx.copy_bytes(&host, false, total, true, sizeof host);
  return host;
}

void scale_inplace(ExecutionContext& base, float* x, int64_t N, double scale) {
  if (N == 0) return;
  CudaContext& ctx = cuda_context(base);
  const int64_t blocks =
      std::min<int64_t>((N + kThreads - 1) / kThreads, int64_t{32} * ctx.multiprocessor_count());
  scale_inplace_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, ctx.stream()>>>(
      x, N, static_cast<float>(scale));
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
