// CPU reference kernels of ops/token_select.h on raw row-major arrays (Real = float or double, so that
// gradient tests run in double). Only src/ops/token_select*.cc and tests include this; the Tensor-level op in
// ops/token_select.h dispatches here.
#pragma once

#include <cstdint>

#include "ops/token_select.h"

namespace nlpf::cpu {

template <typename Real>
void token_select_forward(Real* out, const Real* x, int64_t index, int64_t B, int64_t T, int64_t C);
template <typename Real>
void token_select_backward(Real* dx, const Real* dout, int64_t index, int64_t B, int64_t T, int64_t C);

}  // namespace nlpf::cpu
