// CPU reference kernels of ops/add.h on raw row-major arrays (Real = float or double, so that gradient tests
// run in double). Only src/ops/add*.cc and tests include this; the Tensor-level op in ops/add.h dispatches
// here.
#pragma once

#include <cstdint>

#include "ops/add.h"

namespace nlpf::cpu {

template <typename Real>
void add_forward(Real* out, const Real* a, const Real* b, int64_t N);

}  // namespace nlpf::cpu
