// LayerNorm over the last dimension C (HF/PyTorch: biased variance, eps inside the square root).
// Forward saves mean and rstd per row for backward.
// Parameter gradients accumulate (+=), activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"
#include "ops/dropout.h"

namespace nlpf::ops {

// out [..., C] = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(var + eps); x [..., C] (N rows);
// weight, bias [C]; saves mean [N] and rstd [N] (flat, N = x.numel() / C). All f32. twin, where given (x's
// shape, BF16 or F16), also receives out rounded to its dtype: mixed-precision training's GEMM operand,
// written in the same pass (the f32 out stays the residual).
void layer_norm_forward(ExecutionContext& ctx, Tensor& out, Tensor& mean, Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps, Tensor* twin = nullptr);

// The training forward after a residual block: sum = dropout(x) + residual (dropout_add_forward with the mask
// of `draw` when p > 0, add_forward when p = 0), then out, mean, rstd (and twin) = layer_norm_forward(sum):
// those ops' values bit for bit, on CUDA in one pass per row where the rows fit its warp kernel (the CPU
// calls them in turn). x, residual, sum [..., C] f32; x may be sum.
void dropout_add_layer_norm_forward(ExecutionContext& ctx, Tensor& sum, Tensor& out, Tensor& mean,
                                    Tensor& rstd, const Tensor& x, const Tensor& residual,
                                    const Tensor& weight, const Tensor& bias, double eps, double p,
                                    const DropoutDraw& draw, Tensor* twin = nullptr);

// A copy of layer_norm_backward's dx for the GEMM that reads it next, written in the same pass on CUDA:
// out (dx's shape; f32, BF16 or F16) = dropout_backward(dx) with the drawn mask of `draw` when p > 0, else dx
// rounded to out's dtype. The CPU calls those ops after the backward.
struct LayerNormGradientCopy {
  Tensor* out = nullptr;
  double p = 0;
  DropoutDraw draw;
};

// dx [..., C] (=), dweight [C] (+=), dbias [C] (+=), from dout [..., C] and the saved x, mean, rstd; copy,
// where given, as above.
void layer_norm_backward(ExecutionContext& ctx, Tensor& dx, Tensor& dweight, Tensor& dbias,
                         const Tensor& dout, const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const LayerNormGradientCopy* copy = nullptr);

}  // namespace nlpf::ops
