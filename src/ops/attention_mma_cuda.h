// Tensor-core fused attention for 16-bit and tf32 inference (attention_mma_cuda.cu): the same contract as
// cuda::fused_attention_forward (attention_cuda.h) for F16 and BF16 at head sizes 32, 64 and 128, and for F32
// under TF32 math at 32 and 64, with the two products on the tensor cores (mma.sync m16n8k16, m16n8k8 tf32;
// fp32 accumulation) instead of the CUDA cores.
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

// Whether fused_attention_forward_mma takes this case: dtype F16 or BF16, HS 32, 64 or 128, T <= 512.
bool fused_attention_mma_supports(DType dtype, int64_t HS, int64_t T);

// out [B,T,C] = softmax(q k^T / sqrt(HS) + padding mask) v per head from qkv [B,T,3C], exactly the contract
// of fused_attention_forward: padded keys get probability 0, padded query rows are 0, and a sequence whose
// keys are all padding gets the uniform 1/T over its T keys. Scores, softmax statistics and the output
// accumulate in fp32; the probabilities enter the second product rounded to the storage dtype
// (FlashAttention-2's choice). INVALID_ARGUMENT for a case fused_attention_mma_supports refuses. With codes
// [B,T,C] (and code_scale, one f32 on the device) the kernel also writes out's E4M3 copy for an fp8 GEMM,
// bit-identical to quantize_e4m3_forward applied to out.
void fused_attention_forward_mma(ExecutionContext& ctx, void* out, const void* qkv,
                                 const int32_t* attention_mask, DType dtype, int64_t B, int64_t T, int64_t NH,
                                 int64_t HS, uint8_t* codes = nullptr, const float* code_scale = nullptr);

// Whether fused_attention_forward_tf32 takes this case: HS 32 or 64, T <= 512.
bool fused_attention_tf32_supports(int64_t HS, int64_t T);

// The same contract for f32 storage under TF32 math: Q, K, V and the probabilities rounded to tf32 (cvt.rna)
// for the two products (mma.sync m16n8k8 tf32, fp32 accumulation); scores, softmax statistics and out in
// fp32. INVALID_ARGUMENT for a case fused_attention_tf32_supports refuses.
void fused_attention_forward_tf32(ExecutionContext& ctx, float* out, const float* qkv,
                                  const int32_t* attention_mask, int64_t B, int64_t T, int64_t NH,
                                  int64_t HS);

}  // namespace nlpf::cuda
