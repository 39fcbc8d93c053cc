// CUDA kernel of the elementwise sum (add_cuda.cu), declared without CUDA headers. f32.
#pragma once

#include <cstdint>

#include "backend/context.h"

namespace nlpf::cuda {

// out [N] = a [N] + b [N]; out may be a or b.
void add_forward(ExecutionContext& ctx, float* out, const float* a, const float* b, int64_t N);

}  // namespace nlpf::cuda
