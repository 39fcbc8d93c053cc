// Selects one token's hidden state per sequence: BERT's pooler reads token 0 ([CLS]) before its
// linear + tanh. Forward saves nothing. Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace nlpf::ops {

// out [B,C] = x[:, index, :] for x [B,T,C], f32, 0 <= index < T.
void token_select_forward(Tensor& out, const Tensor& x, int64_t index);
// dx [B,T,C] (=): dout [B,C] at token index, 0 elsewhere.
void token_select_backward(Tensor& dx, const Tensor& dout, int64_t index);

}  // namespace nlpf::ops

namespace nlpf::cpu {

template <typename Real>
void token_select_forward(Real* out, const Real* x, int64_t index, int64_t B, int64_t T, int64_t C);
template <typename Real>
void token_select_backward(Real* dx, const Real* dout, int64_t index, int64_t B, int64_t T, int64_t C);

}  // namespace nlpf::cpu
