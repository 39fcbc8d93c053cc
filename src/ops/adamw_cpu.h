// CPU reference kernels of ops/adamw.h on raw row-major arrays (Real = float or double, so that gradient
// tests run in double). Only src/ops/adamw*.cc and tests include this; the Tensor-level op in ops/adamw.h
// dispatches here.
#pragma once

#include <cstdint>

#include "ops/adamw.h"

namespace nlpf::cpu {

// param, grad, m, v [N]; weight_decay is 0 for a parameter without decay. Each gradient element is read as
// grad[i] * grad_scale (one rounding: the clip factor clip_grad_norm left to its reader; 1 leaves it as is).
template <typename Real>
void adamw_update(Real* param, const Real* grad, Real* m, Real* v, int64_t N, double lr, double beta1,
                  double beta2, double eps, double weight_decay, int64_t step, Real grad_scale = 1);

}  // namespace nlpf::cpu
