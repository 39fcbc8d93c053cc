// CUDA linear layer (linear_cuda.cu): cuBLASLt through backend/cuda/gemm.h, declared without CUDA headers.
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/dtype.h"

namespace nlpf::cuda {

// y [N,OC] (=) x [N,C] (row stride ldx) W^T + bias (+ residual [N,OC], may be y); W [OC,C]; every array of
// `dtype` (F32 under ctx's math mode, BF16, F16 with fp32 accumulation); bias or residual may be null.
void linear_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight, const void* bias,
                    const void* residual, DType dtype, int64_t N, int64_t C, int64_t OC, int64_t ldx);

}  // namespace nlpf::cuda
