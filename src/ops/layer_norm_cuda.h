// CUDA kernels of LayerNorm for inference (layer_norm_cuda.cu), declared without CUDA headers.
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

// out [N,C] = (x - mean) rstd weight + bias, rstd = 1/sqrt(var + eps), biased variance, per row; x, out of
// `dtype` (F32, BF16 or F16; out may be x), weight and bias f32 [C]; statistics in fp32 (two-pass over the
// row held in registers), nothing saved.
void layer_norm_forward(ExecutionContext& ctx, void* out, const void* x, const float* weight,
                        const float* bias, DType dtype, int64_t N, int64_t C, double eps);

// BERT embeddings fused with their LayerNorm: out [B,T,C] = LayerNorm(word[input_ids] + position[t] +
// token_type[token_type_ids]) with weight, bias f32 [C]; the tables word [V,C], position [P,C], token_type
// [TV,C] and out of `dtype`; ids already validated (text/batching does it on the host). The sum is formed in
// fp32 from the rounded table entries.
void embeddings_layer_norm_forward(ExecutionContext& ctx, void* out, const int32_t* input_ids,
                                   const int32_t* token_type_ids, const void* word, const void* position,
                                   const void* token_type, const float* weight, const float* bias,
                                   DType dtype, int64_t B, int64_t T, int64_t C, double eps);

}  // namespace nlpf::cuda
