// CPU reference kernels of ops/tanh.h on raw row-major arrays (Real = float or double, so that gradient tests
// run in double). Only src/ops/tanh*.cc and tests include this; the Tensor-level op in ops/tanh.h dispatches
// here.
#pragma once

#include <cstdint>

#include "ops/tanh.h"

namespace nlpf::cpu {

template <typename Real>
void tanh_forward(Real* out, const Real* x, int64_t N);
template <typename Real>
void tanh_backward(Real* dx, const Real* dout, const Real* out, int64_t N);

}  // namespace nlpf::cpu
