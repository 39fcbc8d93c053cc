// CPU reference kernels of ops/cross_entropy.h on raw row-major arrays (Real = float or double, so that
// gradient tests run in double). Only src/ops/cross_entropy*.cc and tests include this; the Tensor-level op
// in ops/cross_entropy.h dispatches here.
#pragma once

#include <cstdint>

#include "ops/cross_entropy.h"

namespace nlpf::cpu {

// Reference kernels (Real = float or double); the loss accumulates in double.
template <typename Real>
double cross_entropy_forward(Real* probs, const Real* logits, const int32_t* labels, int64_t B, int64_t NL);
template <typename Real>
void cross_entropy_backward(Real* dlogits, const Real* probs, const int32_t* labels, double dloss, int64_t B,
                            int64_t NL);

}  // namespace nlpf::cpu
