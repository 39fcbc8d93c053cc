// CPU reference kernels of ops/attention.h on raw row-major arrays (Real = float or double, so that gradient
// tests run in double). Only src/ops/attention*.cc and tests include this; the Tensor-level op in
// ops/attention.h dispatches here.
#pragma once

#include <cstdint>

#include "ops/attention.h"

namespace nlpf::cpu {

// Reference kernels (Real = float or double); keep may be null (no dropout), keep_scale = 1 / (1 - p).
template <typename Real>
void attention_forward(Real* out, Real* probs, const Real* q, const Real* k, const Real* v,
                       const int32_t* mask, const Real* keep, Real keep_scale, int64_t B, int64_t T,
                       int64_t NH, int64_t HS);
template <typename Real>
void attention_backward(Real* dq, Real* dk, Real* dv, const Real* dout, const Real* q, const Real* k,
                        const Real* v, const int32_t* mask, const Real* probs, const Real* keep,
                        Real keep_scale, int64_t B, int64_t T, int64_t NH, int64_t HS);

}  // namespace nlpf::cpu
