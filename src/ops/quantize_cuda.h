// CUDA kernel of ops::quantize_e4m3_forward (quantize_cuda.cu), declared without CUDA headers.
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

// codes [N] = e4m3(x [N] / *scale), x of x_dtype (F32, BF16, F16), scale one f32 in device memory.
void quantize_e4m3_forward(ExecutionContext& ctx, uint8_t* codes, const void* x, DType x_dtype,
                           const float* scale, int64_t N);

}  // namespace nlpf::cuda
