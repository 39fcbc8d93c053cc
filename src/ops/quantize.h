// FP8 quantisation of an activation or weight (DESIGN §5 fp8, issue 13): codes = e4m3(x / scale) with the
// scale read from memory (device memory on a GPU, so a captured graph follows a recalibration). The reference
// and twin of the quantisation that the fp8 inference path fuses into LayerNorm, GELU and attention output.
#pragma once

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// codes (F8E4M3, x's shape) = e4m3(x / scale[0]) with core/fp8.h's rounding (nearest even, saturating at
// +-448, NaN kept); x F32, BF16 or F16; scale [1] f32, positive.
void quantize_e4m3_forward(ExecutionContext& ctx, Tensor& codes, const Tensor& x, const Tensor& scale);

}  // namespace nlpf::ops
