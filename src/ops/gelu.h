// Exact GELU (HF "gelu", not the tanh approximation): gelu(x) = 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x).
// Forward saves nothing: backward needs the input x, which the caller keeps.
// Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// out = gelu(x), any shape, f32; out may be x. Mixed precision: out may be BF16 or F16 (the f32 result
// rounded once: the next GEMM's operand; then not x).
void gelu_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x);
// dx (=) = dout * (Phi(x) + x phi(x)); dx may be dout. dout and x f32; dx f32, or BF16 / F16 as out above.
void gelu_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, const Tensor& x);

}  // namespace nlpf::ops
