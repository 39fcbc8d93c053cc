// CPU reference kernels of ops/dropout.h on raw row-major arrays (Real = float or double, so that gradient
// tests run in double). Only src/ops/dropout*.cc and tests include this; the Tensor-level op in ops/dropout.h
// dispatches here.
#pragma once

#include <cstdint>

#include "ops/dropout.h"

namespace nlpf::cpu {

// out [N] = x [N] * keep [N] * scale, scale = 1 / (1 - p); backward is the same map applied to dout.
template <typename Real>
void dropout_forward(Real* out, const Real* x, const Real* keep, Real scale, int64_t N);
// keep [N] from the Philox stream of seed starting at index offset, kept with probability 1 - p.
template <typename Real>
void dropout_mask(Real* keep, double p, uint64_t seed, uint64_t offset, int64_t N);

}  // namespace nlpf::cpu
