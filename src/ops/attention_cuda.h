// CUDA kernels of the attention op (attention_cuda.cu), declared without CUDA headers so that the dispatch in
// attention.cc / fused ops can call them. Inference: no probabilities are stored.
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

// out [B,T,C] = softmax(q k^T / sqrt(HS) + padding mask) v per head, C = NH * HS, from the packed projection
// qkv [B,T,3C] (row = q | k | v; head h at columns [h HS, (h+1) HS) of each part). attention_mask [B,T] i32
// (1 = token, 0 = padding): a padded key gets probability exactly 0 (HF's additive finfo.min); the row of a
// padded query is 0 (no token reads it: as a key it is masked, and the classifier reads token 0), which lets
// a tile of padded queries skip its work; in a sequence whose keys are all padding every row gets the uniform
// 1/T over all T keys, as HF. dtype of qkv and out: F32, BF16 or F16;
// scores, softmax statistics and accumulation in fp32, online softmax over key tiles (flash-attention style),
// so T is limited only by max_position_embeddings (T <= 512 checked); HS a multiple of 8, at most 128.
void fused_attention_forward(ExecutionContext& ctx, void* out, const void* qkv, const int32_t* attention_mask,
                             DType dtype, int64_t B, int64_t T, int64_t NH, int64_t HS);

}  // namespace nlpf::cuda
