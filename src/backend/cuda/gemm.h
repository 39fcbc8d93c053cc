// Row-major GEMMs through cuBLASLt with fused epilogues, for the ops' CUDA kernels:
//   y [N, OC] (=) x [N, C] W^T + bias (+ residual)      W [OC, C] as nn.Linear stores it.
// Mapped to cuBLASLt's column-major view as D [OC, N] = W^T(col-major C x OC, transposed) * X (C x N), so no
// operand is transposed in memory; x rows may be strided (ldx >= C: the pooler reads token 0 of every
// sequence with ldx = T C). The bias is cuBLASLt's BIAS epilogue; the residual is its C matrix with beta = 1,
// so "bias + residual" costs no extra pass. Math (DESIGN §5): f32 with IEEE fp32 (MathMode::IEEE_FP32) or
// TF32 tensor cores (MathMode::TF32); bf16 and f16 with fp32 accumulation and scale. Plans (descriptors,
// layouts and the heuristic's algorithm) are cached per shape, dtype, math mode and operand alignment in the
// context, so a repeated shape costs a pointer update and the launch, and a CUDA graph can capture it (the
// workspace is the context's, no allocation inside).
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

struct GemmArgs {
  void* y = nullptr;               // [N, OC], row stride OC
  const void* x = nullptr;         // [N, C], row stride ldx
  const void* weight = nullptr;    // [OC, C]
  const void* bias = nullptr;      // [OC], dtype of y; nullptr: no bias
  const void* residual = nullptr;  // [N, OC]; nullptr: none (may equal y)
  DType dtype = DType::F32;        // of x, weight, bias, residual and y
  bool gelu = false;               // cuBLASLt's GELU epilogue after the bias: the tanh form of GELU
  int64_t N = 0, C = 0, OC = 0, ldx = 0;
};

class GemmPlanCache {
 public:
  GemmPlanCache();
  ~GemmPlanCache();
  GemmPlanCache(const GemmPlanCache&) = delete;
  GemmPlanCache& operator=(const GemmPlanCache&) = delete;

  struct Plan;
  // (dtype, math mode, N, C, OC, ldx, has bias, has residual, gelu, alignment of x, weight, residual, y)
  using Key = std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, int, int, int, int>;
  std::map<Key, std::unique_ptr<Plan>> plans;
};

// Queues the GEMM on ctx's stream. Errors: INVALID_ARGUMENT for sizes (non-positive, ldx < C), UNSUPPORTED
// for a dtype cuBLASLt is not asked to do here, CUBLAS when no algorithm fits.
void gemm(ExecutionContext& ctx, const GemmArgs& args);

}  // namespace nlpf::cuda
