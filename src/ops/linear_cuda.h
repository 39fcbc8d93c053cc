// CUDA linear layer (linear_cuda.cu): cuBLASLt through backend/cuda/gemm.h, declared without CUDA headers.
// Parameter gradients accumulate (+=), activation gradients overwrite (=).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

// y [N,OC] (=) x [N,C] (row stride ldx) W^T + bias (+ residual [N,OC], may be y); W [OC,C]; every array of
// `dtype` (F32 under ctx's math mode, BF16, F16 with fp32 accumulation), except x and W in operand_dtype
// where it is given (BF16 or F16 beside an F32 dtype: mixed-precision training's GEMMs); bias or residual may
// be null.
void linear_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight, const void* bias,
                    const void* residual, DType dtype, int64_t N, int64_t C, int64_t OC, int64_t ldx,
                    std::optional<DType> operand_dtype = std::nullopt);

// y [N,OC] = gelu_tanh(x [N,C] W^T + bias) in one GEMM: cuBLASLt's GELU epilogue, which is the tanh form
// 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))) (measured on an H200, 2026-11-29: within 4.3e-6 of that
// form and up to 4.7e-4 from the exact erf GELU over [-4, 4]). For 16-bit precisions only, where that
// difference is of the order of the storage rounding of the activations; fp32 keeps the exact GELU, tf32 too
// unless asked (ops::F32Gelu::TANH_EPILOGUE, where TF32's rounding of the products is of the same order).
void linear_gelu_tanh_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight,
                              const void* bias, DType dtype, int64_t N, int64_t C, int64_t OC);

// ops::linear_fp8_forward on cuBLASLt's fp8 GEMM: x [N,C] and weight [OC,C] E4M3, the scales in device
// memory: weight_scale_count 1 (x_scale and weight_scale one f32 each) or OC (weight_scale [OC] per output
// channel, x_scale [N]: backend/cuda/gemm.h), bias [OC] and y [N,OC] in y_dtype (F16 or BF16).
void linear_fp8_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight,
                        const float* x_scale, const float* weight_scale, int64_t weight_scale_count,
                        const void* bias, DType y_dtype, int64_t N, int64_t C, int64_t OC);
// The fp8 linears of the fp8 inference path (ops/bert_fused.h), on the same GEMM:
// y [N,OC] = fp8 product + bias (+ residual [N,OC], may be y), y, bias, residual in y_dtype (F16 or BF16);
void linear_fp8_residual_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight,
                                 const float* x_scale, const float* weight_scale, int64_t weight_scale_count,
                                 const void* bias, const void* residual, DType y_dtype, int64_t N, int64_t C,
                                 int64_t OC);
// y [N,OC] = gelu_tanh(fp8 product + bias) in y_dtype (F16 or BF16), cuBLASLt's GELU epilogue;
void linear_fp8_gelu_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight,
                             const float* x_scale, const float* weight_scale, int64_t weight_scale_count,
                             const void* bias, DType y_dtype, int64_t N, int64_t C, int64_t OC);
// codes [N,OC] E4M3 = e4m3(gelu_tanh(fp8 product + bias) * *y_scale_inverse), bias BF16: the feed-forward
// intermediate leaves the GEMM as the next GEMM's input (cuBLASLt's D scale), never as 16-bit activations.
void linear_fp8_gelu_e4m3_forward(ExecutionContext& ctx, uint8_t* codes, const void* x, const void* weight,
                                  const float* x_scale, const float* weight_scale, int64_t weight_scale_count,
                                  const void* bias, const float* y_scale_inverse, int64_t N, int64_t C,
                                  int64_t OC);
// Whether cuBLASLt runs linear_fp8_gelu_e4m3_forward with these arguments on this device (plans it, runs
// nothing).
bool linear_fp8_gelu_e4m3_available(ExecutionContext& ctx, uint8_t* codes, const void* x, const void* weight,
                                    const float* x_scale, const float* weight_scale,
                                    int64_t weight_scale_count, const void* bias,
                                    const float* y_scale_inverse, int64_t N, int64_t C, int64_t OC);

// ops::fp8_channel_gemm_form and its setter on the CUDA context's plan cache.
std::string fp8_channel_gemm_form(ExecutionContext& ctx);
void set_fp8_channel_gemm_form(ExecutionContext& ctx, const std::string& form);
// ops::gemm_autotune_records: the CUDA context's plan cache's.
std::vector<GemmAutotuneRecord> gemm_autotune_records(ExecutionContext& ctx);

// ops::linear_backward, the backward of y = x W^T + bias: dx [N,C] (= or, accumulate_dx, +=, by the GEMM
// itself: beta 1) dy [N,OC] W [OC,C]; dweight [OC,C] (+=) dy^T x [N,C]; dbias [OC] (+=) the column sums of
// dy, accumulated in double in row order within fixed chunks of rows and the chunks in order (deterministic;
// the CPU's sum up to reassociation). dy, x and weight of operand_dtype: F32 (under ctx's math mode), or BF16
// / F16 (16-bit products with fp32 accumulation, dbias summed from the 16-bit dy); dx, dweight and dbias f32.
void linear_backward(ExecutionContext& ctx, float* dx, float* dweight, float* dbias, const void* dy,
                     const void* x, const void* weight, DType operand_dtype, int64_t N, int64_t C, int64_t OC,
                     bool accumulate_dx);

}  // namespace nlpf::cuda
