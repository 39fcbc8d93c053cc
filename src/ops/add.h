// Elementwise sum for the residual connections of post-LayerNorm BERT: LayerNorm(x + sublayer(x)).
// Its backward is the identity to both inputs, so the caller passes dout on (no backward function); add is
// also how a gradient reaching a tensor by two paths is summed.
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// out = a + b; a, b, out: same shape, f32; out may be a or b.
void add_forward(ExecutionContext& ctx, Tensor& out, const Tensor& a, const Tensor& b);

}  // namespace nlpf::ops
