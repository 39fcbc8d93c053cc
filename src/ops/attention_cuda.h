// CUDA kernels of the attention op, declared without CUDA headers so that the dispatch in attention.cc /
// fused ops can call them. Inference (attention_cuda.cu): fused, no probabilities are stored. Training
// (attention_training_cuda.cu): the f32 forward that saves probs and its backward, the CPU reference's
// semantics (attention.h). Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/dtype.h"
#include "ops/dropout_cuda.h"

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

// out [B,C] = fused_attention_forward's row of token 0 only (the [CLS] query the pooler reads), for the last
// encoder layer, whose other rows no output reads: per (b, h) one block over the T keys, fp32 arithmetic on
// the CUDA cores (no tensor-core rounding, at every dtype). A padded token 0 gives 0 and an all-padding
// sequence the uniform 1/T, as fused_attention_forward. dtype F32, BF16 or F16; T <= 512, HS <= 128, B <
// 65536.
void first_query_attention_forward(ExecutionContext& ctx, void* out, const void* qkv,
                                   const int32_t* attention_mask, DType dtype, int64_t B, int64_t T,
                                   int64_t NH, int64_t HS);

// Training forward, f32: out [B,T,C] (=) dropout(probs) v, probs [B,NH,T,T] (=, saved, before dropout) =
// softmax(q k^T / sqrt(HS)) over the keys with attention_mask [B,T] != 0 (padded keys get exactly 0; in a
// sequence whose keys are all padding every row is the uniform 1/T); q, k, v rows of C = NH HS channels
// (head h in channels [h HS, (h+1) HS)) at the row stride ld_qkv floats: C for [B,T,C] tensors, 3 C for
// the parts of a packed projection [B,T,3C] (q = qkv, k = qkv + C, v = qkv + 2 C). keep: the [B,NH,T,T] keep
// values (a 0/1 mask, or drawn inside the softmax kernels, ops/dropout_cuda.h), or neither (no dropout);
// keep_scale = 1 / (1 - p). Unlike the fused inference kernel, padded query rows are computed as the CPU
// computes them (the backward needs them). The mask is not validated here (the host would have to wait): any
// non-zero value is a token. Batched cuBLASLt GEMMs per (b, h) in the context's math mode (TF32 products
// under MathMode::TF32) around a masked-softmax row kernel: under IEEE fp32 on pointer arrays that read the
// rows in place (stream-ordered scratch: B T C floats for a 16-bit out only), else strided over head-major
// copies (4 B T C floats); + B NH T T floats with dropout. out of out_dtype: F32, or BF16 / F16 (each value
// rounded once: mixed precision's GEMM operand).
void attention_forward(ExecutionContext& ctx, void* out, DType out_dtype, float* probs, const float* q,
                       const float* k, const float* v, int64_t ld_qkv, const int32_t* attention_mask,
                       const KeepSource& keep, float keep_scale, int64_t B, int64_t T, int64_t NH,
                       int64_t HS);

// Training backward, f32: dq, dk, dv (=, rows at the stride ld_dqkv) from dout [B,T,C] and the forward's
// q, k, v (rows at the stride ld_qkv), attention_mask, probs and keep (as attention_forward). Per head, pd =
// dropout(probs), scale = 1 / sqrt(HS): dv = pd^T dout, dp = dropout(dout v^T), dscore = scale p (dp -
// rowsum(p dp)), dq = dscore k, dk = dscore^T q; a sequence whose keys are all padding gets dq = dk = 0. Four
// batched GEMMs (pointer arrays or strided, as the forward's) and a softmax-backward row kernel (fixed-order
// row sums), deterministic; stream-ordered scratch of B NH T T floats, + 3 B T C for 16-bit gradients
// (pointer arrays) or 4 B T C (copies), + B NH T T with dropout. dq, dk, dv of dqkv_dtype: F32, or BF16 / F16
// as attention_forward's out.
void attention_backward(ExecutionContext& ctx, void* dq, void* dk, void* dv, int64_t ld_dqkv,
                        DType dqkv_dtype, const float* dout, const float* q, const float* k, const float* v,
                        int64_t ld_qkv, const int32_t* attention_mask, const float* probs,
                        const KeepSource& keep, float keep_scale, int64_t B, int64_t T, int64_t NH,
                        int64_t HS);

}  // namespace nlpf::cuda
