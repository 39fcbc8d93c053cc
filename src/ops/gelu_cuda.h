// CUDA kernels of exact GELU (gelu_cuda.cu), declared without CUDA headers. cuBLASLt's GELU epilogue is not
// used: BERT's GELU is the exact erf form (HF "gelu"). Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/dtype.h"
#include "ops/padded_rows.h"

namespace nlpf::cuda {

// out [N] = 0.5 x (1 + erf(x / sqrt 2)), computed in fp32; dtype F32, BF16 or F16; out may be x.
void gelu_forward(ExecutionContext& ctx, void* out, const void* x, DType dtype, int64_t N);
// y [rows, C] (=) = gelu(y + bias [C]), f32, in place: the feed-forward intermediate of f32 / tf32 inference
// after its GEMM without bias. The rows of `padded` (ops/padded_rows.h; rows = B T) are neither read nor
// written: the GEMM wrote them as exact zeros from its input's zero rows, and zeros they stay.
void bias_gelu_forward(ExecutionContext& ctx, float* y, const float* bias, int64_t rows, int64_t C,
                       const PaddedRows& padded);

// dx [N] (=) = dout [N] (Phi(x) + x phi(x)) from the forward's input x [N], f32 (Phi the standard normal
// CDF, phi its density); dx may be dout.
void gelu_backward(ExecutionContext& ctx, float* dx, const float* dout, const float* x, int64_t N);
// The same with dx of dx_dtype (F32, or BF16 / F16: the f32 value rounded once, mixed precision's GEMM
// operand; then dx is not dout).
void gelu_backward(ExecutionContext& ctx, void* dx, DType dx_dtype, const float* dout, const float* x,
                   int64_t N);
// out [N] of out_dtype (BF16 or F16) = gelu(x [N], f32) rounded once: the mixed-precision forward's GEMM
// operand.
void gelu_forward_rounded(ExecutionContext& ctx, void* out, DType out_dtype, const float* x, int64_t N);

}  // namespace nlpf::cuda
