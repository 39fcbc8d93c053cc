// CPU reference kernels of ops/clip_grad_norm.h on raw row-major arrays (Real = float or double, so that
// gradient tests run in double). Only src/ops/clip_grad_norm*.cc and tests include this; the Tensor-level op
// in ops/clip_grad_norm.h dispatches here.
#pragma once

#include <cstdint>
#include <span>

#include "ops/clip_grad_norm.h"

namespace nlpf::cpu {

// Sum of squares of x [N] in double, in fixed blocks, so the result does not depend on the thread count.
template <typename Real>
double sum_squares(const Real* x, int64_t N);
// x [N] *= scale.
template <typename Real>
void scale_inplace(Real* x, int64_t N, double scale);

}  // namespace nlpf::cpu
