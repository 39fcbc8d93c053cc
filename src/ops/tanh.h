// tanh, the activation of BERT's pooler (pooler = linear + tanh on token 0; see token_select.h).
// Forward saves nothing extra: backward uses the output, dtanh = 1 - tanh^2. Activation gradients
// overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// out = tanh(x), any shape, f32; out may be x.
void tanh_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x);
// dx (=) = dout (1 - out^2) from the forward's output; dx may be dout.
void tanh_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, const Tensor& out);

}  // namespace nlpf::ops
