// CUDA kernels of gradient-norm clipping (clip_grad_norm_cuda.cu), declared without CUDA headers for the
// dispatch in clip_grad_norm.cc.
#pragma once

#include <cstdint>
#include <span>

#include "backend/context.h"

namespace nlpf::cuda {

// The sum of squares of every arrays[i] [sizes[i]] (f32, on ctx's device), in double, read back to the host
// (waits for ctx's stream). Deterministic: each array is cut into a number of blocks that depends only on its
// size, each block reduces in a fixed tree order, and one block adds the partial sums in a fixed order.
double sum_squares(ExecutionContext& ctx, std::span<const float* const> arrays,
                   std::span<const int64_t> sizes);

// Every arrays[i] [sizes[i]] *= scale, the scale rounded to f32 once (as the CPU's scale_inplace); a few
// launches for all arrays.
void scale_inplace(ExecutionContext& ctx, std::span<float* const> arrays, std::span<const int64_t> sizes,
                   double scale);

}  // namespace nlpf::cuda
