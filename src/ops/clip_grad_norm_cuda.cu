// Gradient-norm clipping on CUDA (clip_grad_norm_cuda.h): a two-pass sum of squares in double (partial sums
// per block of each array, then one block over all partials, both in a fixed order: no atomics, the same bits
// at every run) and an in-place scale. Multi-tensor: one launch covers up to kArraysPerLaunch arrays (their
// pointers, sizes and first blocks travel as a kernel argument), so a model's ~100-200 gradients cost a few
// launches instead of one each; each array's split into blocks is the same as with a launch of its own.
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

constexpr int kArraysPerLaunch = 64;  // keeps the table argument under the 4 KB of classic kernel arguments

// Up to kArraysPerLaunch arrays of one launch: array a is data[a] [size[a]] and owns the launch's blocks
// [first_block[a], first_block[a + 1]).
template <typename T>
struct ArrayTable {
  T* data[kArraysPerLaunch];
  int64_t size[kArraysPerLaunch];
  int64_t first_block[kArraysPerLaunch + 1];
  int count;
};

// The array owning this block, and the block's index and count within it.
struct BlockOfArray {
  int array;
  int64_t block, blocks;
};
template <typename T>
__device__ __forceinline__ BlockOfArray block_of_array(const ArrayTable<T>& t) {
  int a = 0;
  while (a + 1 < t.count && t.first_block[a + 1] <= static_cast<int64_t>(blockIdx.x)) ++a;
  return {a, static_cast<int64_t>(blockIdx.x) - t.first_block[a], t.first_block[a + 1] - t.first_block[a]};
}

// partial [first_block[count]] (=) the sums of squares of every array of t, blocks_for(N) partial sums per
// array over a grid-stride split within it (element i to its block (i / kThreads) % blocks); kThreads
// threads.
__global__ void sum_squares_partial_kernel(double* __restrict__ partial, const ArrayTable<const float> t) {
  __shared__ double sums[kThreads];
  const BlockOfArray at = block_of_array(t);
  const float* __restrict__ x = t.data[at.array];
  const int64_t N = t.size[at.array], stride = at.blocks * kThreads;
  double sum = 0;
  for (int64_t i = at.block * kThreads + threadIdx.x; i < N; i += stride) {
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

// Every array of t *= scale; kThreads threads, the blocks of blocks_for(N) per array.
__global__ void scale_inplace_kernel(const ArrayTable<float> t, float scale) {
  const BlockOfArray at = block_of_array(t);
  float* __restrict__ x = t.data[at.array];
  const int64_t N = t.size[at.array], stride = at.blocks * kThreads;
  for (int64_t i = at.block * kThreads + threadIdx.x; i < N; i += stride) x[i] *= scale;
}

// Calls launch(table, first block of the launch) for arrays in groups of kArraysPerLaunch, empty arrays left
// out; returns the blocks of all launches.
template <typename T, typename Launch>
int64_t for_each_launch(std::span<T* const> arrays, std::span<const int64_t> sizes, Launch launch) {
  int64_t total = 0;
  ArrayTable<T> table{};
  const auto flush = [&] {
    if (table.count == 0) return;
    launch(table, total);
    total += table.first_block[table.count];
    table = ArrayTable<T>{};
  };
  for (size_t i = 0; i < arrays.size(); ++i) {
    const int64_t blocks = blocks_for(sizes[i]);
    if (blocks == 0) continue;
    table.data[table.count] = arrays[i];
    table.size[table.count] = sizes[i];
    table.first_block[table.count + 1] = table.first_block[table.count] + blocks;
    if (++table.count == kArraysPerLaunch) flush();
  }
  flush();
  return total;
}

}  // namespace

namespace {

// *total (=) the sum of squares of every array (device memory), queued on ctx's stream.
void sum_squares_into(CudaContext& ctx, std::span<const float* const> arrays, std::span<const int64_t> sizes,
                      double* total) {
  NLPF_CHECK(arrays.size() == sizes.size(), ErrorCode::INTERNAL, "sum_squares (cuda): ", arrays.size(),
             " arrays but ", sizes.size(), " sizes");
  int64_t P = 0;
  for (const int64_t N : sizes) P += blocks_for(N);
  // Stream-ordered scratch: the partial sums of every array one after the other.
  Buffer scratch(ctx.allocator(), static_cast<size_t>(std::max<int64_t>(P, 1)) * sizeof(double));
  double* partial = static_cast<double*>(scratch.data());
  for_each_launch(arrays, sizes, [&](const ArrayTable<const float>& table, int64_t first) {
    sum_squares_partial_kernel<<<static_cast<unsigned>(table.first_block[table.count]), kThreads, 0,
                                 ctx.stream()>>>(partial + first, table);
    NLPF_CUDA_CHECK_LAUNCH();
  });
  sum_partials_kernel<<<1, kThreads, 0, ctx.stream()>>>(total, partial, P);
  NLPF_CUDA_CHECK_LAUNCH();
}

// norm (=) sqrt(sum) / loss_scale and factor (=) the clip factor, in clip_grad_norm.cc's operations (__d*_rn:
// no fused multiply-add, so the host's bits); factor 1 when the norm is not finite. One thread.
__global__ void clip_factor_kernel(double* __restrict__ norm, double* __restrict__ factor,
                                   const double* __restrict__ sum, const double* __restrict__ loss_scale,
                                   double max_norm) {
  const double inverse_scale = __ddiv_rn(1.0, *loss_scale);
  const double n = __dmul_rn(__dsqrt_rn(*sum), inverse_scale);
  const double coefficient = __ddiv_rn(max_norm, __dadd_rn(n, 1e-6));  // torch's formula, 1e-6 included
  const double f = __dmul_rn(coefficient < 1.0 ? coefficient : 1.0, inverse_scale);
  *norm = n;
  *factor = isfinite(n) ? f : 1.0;
}

// Every array of t *= (float)*factor unless *factor is 1; as scale_inplace_kernel otherwise.
__global__ void scale_by_factor_kernel(const ArrayTable<float> t, const double* __restrict__ factor) {
  const double f = *factor;
  if (f == 1.0) return;
  const float scale = static_cast<float>(f);
  const BlockOfArray at = block_of_array(t);
  float* __restrict__ x = t.data[at.array];
  const int64_t N = t.size[at.array], stride = at.blocks * kThreads;
  for (int64_t i = at.block * kThreads + threadIdx.x; i < N; i += stride) x[i] *= scale;
}

}  // namespace

double sum_squares(ExecutionContext& base, std::span<const float* const> arrays,
                   std::span<const int64_t> sizes) {
  CudaContext& ctx = cuda_context(base);
  Buffer scratch(ctx.allocator(), sizeof(double));
  double* total = static_cast<double*>(scratch.data());
  sum_squares_into(ctx, arrays, sizes, total);
  double host = 0;
  ctx.copy_bytes(&host, false, total, true, sizeof host);
  return host;
}

void clip_grad_norm(ExecutionContext& base, std::span<float* const> arrays, std::span<const int64_t> sizes,
                    double max_norm, const double* loss_scale, double* norm, double* factor,
                    bool scale_in_place) {
  CudaContext& ctx = cuda_context(base);
  Buffer scratch(ctx.allocator(), sizeof(double));  // the sum of squares
  double* sum = static_cast<double*>(scratch.data());
  const std::vector<const float*> read(arrays.begin(), arrays.end());
  sum_squares_into(ctx, read, sizes, sum);
  clip_factor_kernel<<<1, 1, 0, ctx.stream()>>>(norm, factor, sum, loss_scale, max_norm);
  NLPF_CUDA_CHECK_LAUNCH();
  if (!scale_in_place) return;  // the reader multiplies (AdamW's grad_scale)
  for_each_launch(arrays, sizes, [&](const ArrayTable<float>& table, int64_t) {
    scale_by_factor_kernel<<<static_cast<unsigned>(table.first_block[table.count]), kThreads, 0,
                             ctx.stream()>>>(table, factor);
    NLPF_CUDA_CHECK_LAUNCH();
  });
}

void scale_inplace(ExecutionContext& base, std::span<float* const> arrays, std::span<const int64_t> sizes,
                   double scale) {
  NLPF_CHECK(arrays.size() == sizes.size(), ErrorCode::INTERNAL, "scale_inplace (cuda): ", arrays.size(),
             " arrays but ", sizes.size(), " sizes");
  CudaContext& ctx = cuda_context(base);
  for_each_launch(arrays, sizes, [&](const ArrayTable<float>& table, int64_t) {
    scale_inplace_kernel<<<static_cast<unsigned>(table.first_block[table.count]), kThreads, 0,
                           ctx.stream()>>>(table, static_cast<float>(scale));
    NLPF_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace nlpf::cuda
