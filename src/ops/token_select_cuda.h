// CUDA kernels of selecting one token per sequence (token_select_cuda.cu), declared without CUDA headers.
// f32 (forward also 16-bit). Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"

namespace nlpf::cuda {

// out [B,C] = x [B,T,C] at token index (0 <= index < T).
void token_select_forward(ExecutionContext& ctx, float* out, const float* x, int64_t index, int64_t B,
                          int64_t T, int64_t C);
// The same for a 16-bit dtype (bf16 or f16: the bits are copied).
void token_select_forward_16bit(ExecutionContext& ctx, uint16_t* out, const uint16_t* x, int64_t index,
                                int64_t B, int64_t T, int64_t C);
// dx [B,T,C] (=): dout [B,C] at token index, 0 elsewhere.
void token_select_backward(ExecutionContext& ctx, float* dx, const float* dout, int64_t index, int64_t B,
                           int64_t T, int64_t C);

}  // namespace nlpf::cuda
