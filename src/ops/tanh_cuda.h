// CUDA kernels of tanh and its backward (tanh_cuda.cu), declared without CUDA headers. f32. Activation
// gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"

namespace nlpf::cuda {

// out [N] = tanh(x [N]); out may be x.
void tanh_forward(ExecutionContext& ctx, float* out, const float* x, int64_t N);
// dx [N] (=) = dout [N] (1 - out^2) from the forward's output out [N]; dx may be dout.
void tanh_backward(ExecutionContext& ctx, float* dx, const float* dout, const float* out, int64_t N);

}  // namespace nlpf::cuda
