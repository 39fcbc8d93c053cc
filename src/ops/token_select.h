// Selects one token's hidden state per sequence: BERT's pooler reads token 0 ([CLS]) before its
// linear + tanh. Forward saves nothing. Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// out [B,C] = x[:, index, :] for x [B,T,C], 0 <= index < T: f32, or on CUDA also bf16 or f16 (out in x's
// dtype; the inference engine's first-token-only last layer gathers its residual rows here).
void token_select_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, int64_t index);
// dx [B,T,C] (=): dout [B,C] at token index, 0 elsewhere, f32.
void token_select_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, int64_t index);

}  // namespace nlpf::ops
