// CPU reference kernels of ops/gelu.h on raw row-major arrays (Real = float or double, so that gradient tests
// run in double). Only src/ops/gelu*.cc and tests include this; the Tensor-level op in ops/gelu.h dispatches
// here.
#pragma once

#include <cstdint>

#include "ops/gelu.h"

namespace nlpf::cpu {

template <typename Real>
void gelu_forward(Real* out, const Real* x, int64_t N);
template <typename Real>
void gelu_backward(Real* dx, const Real* dout, const Real* x, int64_t N);

}  // namespace nlpf::cpu
