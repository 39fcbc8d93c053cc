// Reductions across the 32 lanes of a full warp (butterfly shuffles: every lane gets the result), for the
// kernels' row statistics: the LayerNorms' sums, the softmax's max and sum. Included by *.cu files only.
#pragma once

#include <cuda_runtime.h>

namespace nlpf::cuda {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

}  // namespace nlpf::cuda
