// CPU reference kernels of ops/linear.h on raw row-major arrays (Real = float or double, so that gradient
// tests run in double). Only src/ops/linear*.cc and tests include this; the Tensor-level op in ops/linear.h
// dispatches here.
#pragma once

#include <cstdint>

#include "ops/linear.h"

namespace nlpf::cpu {

// Reference kernels through BLAS GEMM (Real = float or double).
template <typename Real>
void linear_forward(Real* y, const Real* x, const Real* weight, const Real* bias, int64_t N, int64_t C,
                    int64_t OC);
// bf16 weights [OC,C] (raw bits): rounds x to bf16 (round to nearest even) and calls the bf16 GEMM.
void linear_forward_bf16(float* y, const float* x, const uint16_t* weight, const float* bias, int64_t N,
                         int64_t C, int64_t OC);
// fp8 reference: y (16-bit bits, dtype y_dtype) [n, o] = decode(x) x_scale (decode(w) w_scale)^T + bias,
// sums in double; per tensor (weight_scale_count 1: x_scale[0], weight_scale[0]) or per output channel
// (weight_scale_count OC: weight_scale[o] and x_scale[n]).
void linear_fp8_forward(uint16_t* y, const uint8_t* x, const uint8_t* weight, const float* x_scale,
                        const float* weight_scale, int64_t weight_scale_count, const uint16_t* bias,
                        DType y_dtype, int64_t N, int64_t C, int64_t OC);
template <typename Real>
void linear_backward(Real* dx, Real* dweight, Real* dbias, const Real* dy, const Real* x, const Real* weight,
                     int64_t N, int64_t C, int64_t OC, bool accumulate_dx = false);

}  // namespace nlpf::cpu
