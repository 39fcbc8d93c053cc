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

// ops::clip_grad_norm's device form on every arrays[i] [sizes[i]]: the sum of squares as above into device
// scratch, then one thread computes *norm = sqrt(sum) / *loss_scale and *factor with clip_grad_norm.cc's
// operations (1 when the norm is not finite or no clipping is needed), then, with scale_in_place, the arrays
// are scaled by *factor rounded to f32 (left alone when it is 1). Nothing waits for the host.
void clip_grad_norm(ExecutionContext& ctx, std::span<float* const> arrays, std::span<const int64_t> sizes,
                    double max_norm, const double* loss_scale, double* norm, double* factor,
                    bool scale_in_place);

}  // namespace nlpf::cuda
