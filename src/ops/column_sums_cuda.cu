// finish_column_sums (column_sums_cuda.h): a block of kColumns x kLanes threads per kColumns columns.
#include "ops/column_sums_cuda.h"

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "core/error.h"

namespace nlpf::cuda {
namespace {

constexpr int kColumns = 32;  // a warp reads 32 adjacent columns of a chunk's row
constexpr int kLanes = 8;     // chunks read at once per column

// Thread (x, y) sums chunks y, y + kLanes, ... of its column in order; thread row 0 adds the kLanes sums in
// order and the float-rounded total to lo or hi.
__global__ void __launch_bounds__(kColumns* kLanes)
    finish_column_sums_kernel(float* __restrict__ lo, float* __restrict__ hi, int64_t split,
                              const double* __restrict__ partial, int64_t chunks, int64_t width) {
  __shared__ double lanes[kLanes][kColumns];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kColumns + threadIdx.x;
  double sum = 0;
  if (j < width) {
    for (int64_t k = threadIdx.y; k < chunks; k += kLanes) sum += partial[k * width + j];
  }
  lanes[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y != 0 || j >= width) return;
  double total = 0;
#pragma unroll
  for (int lane = 0; lane < kLanes; ++lane) total += lanes[lane][threadIdx.x];
  if (j < split) {
    lo[j] += static_cast<float>(total);
  } else {
    hi[j - split] += static_cast<float>(total);
  }
}

}  // namespace

void finish_column_sums(ExecutionContext& ctx, float* lo, float* hi, int64_t split, const double* partial,
                        int64_t chunks, int64_t width) {
  const int64_t blocks = (width + kColumns - 1) / kColumns;
  NLPF_CHECK(blocks <= 0x7fffffff, ErrorCode::UNSUPPORTED, "column sums (cuda): ", width, " columns");
  if (blocks == 0) return;
  finish_column_sums_kernel<<<static_cast<unsigned>(blocks), dim3(kColumns, kLanes), 0,
                              cuda_context(ctx).stream()>>>(lo, hi, split, partial, chunks, width);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
