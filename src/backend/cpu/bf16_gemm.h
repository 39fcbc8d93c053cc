// bf16 GEMM with fp32 accumulation on the host through oneDNN's matmul (AVX512-BF16 / AMX kernels), for
// the bf16 inference precision on the CPU (DESIGN §5). Built only where oneDNN was found at configure time
// (NLPF_WITH_ONEDNN); elsewhere bf16_gemm_unavailable_reason() says why and the precision is refused.
// The one place that includes oneDNN headers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace nlpf::cpu {

// nullopt when linear_bf16 can run here: oneDNN built in and the CPU executes AVX512-BF16.
std::optional<std::string> bf16_gemm_unavailable_reason();

// y [M,N] f32 = x [M,K] bf16 · w [N,K]^T bf16 + bias [N] f32 (bias may be null), products and sums in fp32.
// w is in nn.Linear's [out, in] layout. Bits are raw bf16 (uint16_t). Primitives are cached per shape.
// Errors: UNSUPPORTED with the reason when unavailable.
void linear_bf16(float* y, const uint16_t* x, const uint16_t* w, const float* bias, int64_t M, int64_t K,
                 int64_t N);

}  // namespace nlpf::cpu
