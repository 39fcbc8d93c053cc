// linear_forward with bf16 weights on the CPU: x rounded to bf16 (round to nearest even, as PyTorch's
// autocast casts), then oneDNN's bf16 GEMM with fp32 accumulation (backend/cpu/bf16_gemm.h).
#include "backend/cpu/bf16_gemm.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "ops/linear_cpu.h"

namespace nlpf::cpu {

void linear_forward_bf16(float* y, const float* x, const uint16_t* weight, const float* bias, int64_t N,
                         int64_t C, int64_t OC) {
  // Through the allocator, so the rounded copy counts in peak memory (a [B*T, I] of bert-base: 25 MB).
  Tensor x_bf16 = Tensor::empty(DType::BF16, {N, C});
  const int64_t n = N * C;
  uint16_t* xb = x_bf16.data_u16();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) xb[i] = f32_to_bf16(x[i]);
  linear_bf16(y, xb, weight, bias, N, C, OC);
}

}  // namespace nlpf::cpu
