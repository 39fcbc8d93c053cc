// CUDA kernel of the classifier head after the pooler GEMM (classifier_head_cuda.cu), declared without CUDA
// headers.
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

// For each row b of pooler_pre [B,C] (the pooler's dense output with its bias, of `dtype`):
//   pooled = tanh(pooler_pre[b]) (rounded to dtype, as a 16-bit model stores it),
//   logits[b, :] (f32 [B,NL]) = pooled classifier_weight^T + classifier_bias (weight [NL,C] of dtype, bias
//   f32 [NL]; dot products in fp32), predictions[b] (i32) = argmax (the first maximum, as torch.argmax), and
//   when labels (i32 [B]) is not null, *correct (i32, accumulated with +=) += number of b with predictions[b]
//   == labels[b]. dtype F32, BF16 or F16.
void classifier_head_forward(ExecutionContext& ctx, float* logits, int32_t* predictions, int32_t* correct,
                             const void* pooler_pre, const void* classifier_weight,
                             const float* classifier_bias, const int32_t* labels, DType dtype, int64_t B,
                             int64_t C, int64_t NL);

}  // namespace nlpf::cuda
