// Global gradient-norm clipping, torch.nn.utils.clip_grad_norm_ (L2, error_if_nonfinite=False): the total
// norm over all gradients, then every gradient scaled by min(1, max_norm / (norm + 1e-6)).
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace nlpf::ops {

// Returns the norm before clipping (squares summed in double). The gradients (f32, any shapes, one device)
// are scaled in place when max_norm / (norm + 1e-6) < 1. A non-finite norm leaves them untouched, so the
// caller can skip the step (torch would multiply them by 0 and turn inf into NaN).
double clip_grad_norm(std::span<Tensor> grads, double max_norm);

}  // namespace nlpf::ops

namespace nlpf::cpu {

// Sum of squares of x [N] in double, in fixed blocks, so the result does not depend on the thread count.
template <typename Real>
double sum_squares(const Real* x, int64_t N);
// x [N] *= scale.
template <typename Real>
void scale_inplace(Real* x, int64_t N, double scale);

}  // namespace nlpf::cpu
