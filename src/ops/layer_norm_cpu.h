// CPU reference kernels of ops/layer_norm.h on raw row-major arrays (Real = float or double, so that gradient
// tests run in double). Only src/ops/layer_norm*.cc and tests include this; the Tensor-level op in
// ops/layer_norm.h dispatches here.
#pragma once

#include <cstdint>

#include "ops/layer_norm.h"

namespace nlpf::cpu {

// Reference kernels (Real = float or double); statistics accumulate in double.
template <typename Real>
void layer_norm_forward(Real* out, Real* mean, Real* rstd, const Real* x, const Real* weight,
                        const Real* bias, double eps, int64_t N, int64_t C);
template <typename Real>
void layer_norm_backward(Real* dx, Real* dweight, Real* dbias, const Real* dout, const Real* x,
                         const Real* weight, const Real* mean, const Real* rstd, int64_t N, int64_t C);

}  // namespace nlpf::cpu
