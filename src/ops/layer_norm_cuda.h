// CUDA kernels of LayerNorm (layer_norm_cuda.cu), declared without CUDA headers: inference forwards of the
// storage dtype, and the f32 training forward (saving mean, rstd) and backward. Parameter gradients
// accumulate (+=), activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/dtype.h"
#include "ops/dropout_cuda.h"
#include "ops/padded_rows.h"

namespace nlpf::cuda {

// out [N,C] = (x - mean) rstd weight + bias, rstd = 1/sqrt(var + eps), biased variance, per row; x, out of
// `dtype` (F32, BF16 or F16; out may be x), weight and bias f32 [C]; statistics in fp32 (two-pass over the
// row held in registers), nothing saved. With codes [N,C] (and code_scale, one f32 on the device) also the
// E4M3 copy of out for an fp8 GEMM: codes = e4m3(out as stored / *code_scale), bit-identical to
// quantize_e4m3_forward applied to out afterwards. padded (ops/padded_rows.h): rows written as 0 unread
// (N = B T), or, with padded.already_zero (out == x, no codes), left as the zeros they are. x_bias [C] f32,
// unless nullptr, is added to x before the statistics (in fp32): the bias of an f32 GEMM that left it out.
// x_residual [N,C] f32, unless nullptr (then dtype F32, with x_bias, and not out), is added before it:
// (x + x_residual) + x_bias in fp32, the residual of an f32 GEMM that left that out too.
void layer_norm_forward(ExecutionContext& ctx, void* out, const void* x, const float* weight,
                        const float* bias, DType dtype, int64_t N, int64_t C, double eps,
                        uint8_t* codes = nullptr, const float* code_scale = nullptr,
                        const PaddedRows& padded = {}, const float* x_bias = nullptr,
                        const float* x_residual = nullptr);

// BERT embeddings fused with their LayerNorm: out [B,T,C] = LayerNorm(word[input_ids] + position[t] +
// token_type[token_type_ids]) with weight, bias f32 [C]; the tables word [V,C], position [P,C], token_type
// [TV,C] and out of `dtype`; ids already validated (text/batching does it on the host). The sum is formed in
// fp32 from the rounded table entries. codes, code_scale: the E4M3 copy of out, and padded, as
// layer_norm_forward's.
void embeddings_layer_norm_forward(ExecutionContext& ctx, void* out, const int32_t* input_ids,
                                   const int32_t* token_type_ids, const void* word, const void* position,
                                   const void* token_type, const float* weight, const float* bias,
                                   DType dtype, int64_t B, int64_t T, int64_t C, double eps,
                                   uint8_t* codes = nullptr, const float* code_scale = nullptr,
                                   const PaddedRows& padded = {});

// Training forward, f32: out [N,C] as above from x [N,C], weight, bias [C]; saves mean [N] and rstd [N] for
// the backward (fp32 statistics, as the CPU float kernel). out may be x. twin [N,C], unless nullptr, receives
// out rounded to twin_dtype (BF16 or F16, nearest even): mixed precision's GEMM operand, in the same pass.
void layer_norm_forward(ExecutionContext& ctx, float* out, float* mean, float* rstd, const float* x,
                        const float* weight, const float* bias, int64_t N, int64_t C, double eps,
                        void* twin = nullptr, DType twin_dtype = DType::BF16);

// The training forward after a residual block: sum [N,C] (=) x * keep * scale + residual (the drawn dropout
// of `keep`, ops::dropout_add_forward's roundings; x + residual where keep is inactive), then out, mean, rstd
// and twin as the training forward above from sum. One pass per row where C fits the warp kernel and every
// pointer is 16-byte aligned (twin 8-byte), else the two kernels in turn: the same bits either way. x may be
// sum.
void dropout_add_layer_norm_forward(ExecutionContext& ctx, float* sum, float* out, float* mean, float* rstd,
                                    const float* x, const float* residual, const KeepSource& keep,
                                    float scale, const float* weight, const float* bias, int64_t N, int64_t C,
                                    double eps, void* twin = nullptr, DType twin_dtype = DType::BF16);

// copy [N,C], unless nullptr, also receives dx times the drawn keep values of `keep` times scale (dx where
// keep is inactive), rounded to copy_dtype (F32, BF16 or F16) in the same pass: the bits of dropout_forward
// on dx into a copy_dtype output. dx [N,C] (=), dweight [C] (+=), dbias [C] (+=) from dout [N,C] and the
// forward's x [N,C], weight [C], mean and rstd [N]; f32 tensors, row sums in double (as the CPU reference).
// dx must not alias dout or x. The parameter gradients are reduced over rows in a fixed order through a
// workspace from ctx's allocator (no atomics): bit-identical results from run to run.
void layer_norm_backward(ExecutionContext& ctx, float* dx, float* dweight, float* dbias, const float* dout,
                         const float* x, const float* weight, const float* mean, const float* rstd, int64_t N,
                         int64_t C, void* copy = nullptr, DType copy_dtype = DType::F32,
                         const KeepSource& keep = {}, float scale = 1.0f);

}  // namespace nlpf::cuda
