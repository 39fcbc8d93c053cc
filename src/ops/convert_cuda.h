// CUDA kernel of ops::convert_many (convert_cuda.cu), declared without CUDA headers.
#pragma once

#include <cstdint>
#include <span>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

// One tensor of a conversion: n f32 values at src rounded into dst.
struct ConvertEntry {
  void* dst = nullptr;
  const float* src = nullptr;
  int64_t n = 0;
};

// Every entry's dst (of dtype BF16 or F16) = its src rounded to nearest even (__float2bfloat16_rn /
// __float2half_rn: the host's f32_to_bf16 / f32_to_f16), up to 64 entries per launch.
void convert_many(ExecutionContext& ctx, std::span<const ConvertEntry> entries, DType dtype);

}  // namespace nlpf::cuda
