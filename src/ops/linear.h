// Linear layer y = x W^T + b with W [OC,C] in PyTorch's nn.Linear layout (as stored in HF checkpoints).
// Forward saves nothing: backward needs x and W, which the caller keeps.
// Parameter gradients accumulate (+=), activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace nlpf::ops {

// y [..., OC] = x [..., C] W^T + b; weight [OC,C], bias [OC]; N = x.numel() / C rows. All f32, except a
// BF16 weight (bf16 inference, DESIGN §5): x is then rounded to bf16 and the product runs as a bf16 GEMM
// with fp32 accumulation (cpu::linear_bf16); y and the bias stay f32.
void linear_forward(Tensor& y, const Tensor& x, const Tensor& weight, const Tensor& bias);

// dx [..., C] (=) = dy W; dweight [OC,C] (+=) dy^T x; dbias [OC] (+=) sum over rows of dy.
void linear_backward(Tensor& dx, Tensor& dweight, Tensor& dbias, const Tensor& dy, const Tensor& x,
                     const Tensor& weight);

}  // namespace nlpf::ops

namespace nlpf::cpu {

// Reference kernels through BLAS GEMM (Real = float or double).
template <typename Real>
void linear_forward(Real* y, const Real* x, const Real* weight, const Real* bias, int64_t N, int64_t C,
                    int64_t OC);
// bf16 weights [OC,C] (raw bits): rounds x to bf16 (round to nearest even) and calls the bf16 GEMM.
void linear_forward_bf16(float* y, const float* x, const uint16_t* weight, const float* bias, int64_t N,
                         int64_t C, int64_t OC);
template <typename Real>
void linear_backward(Real* dx, Real* dweight, Real* dbias, const Real* dy, const Real* x, const Real* weight,
                     int64_t N, int64_t C, int64_t OC);

}  // namespace nlpf::cpu
