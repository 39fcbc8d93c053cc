// Selecting one token per sequence on CUDA (token_select_cuda.h), f32 (forward also 16-bit): a copy of B rows
// forward, and backward a write of every element of dx (the selected rows from dout, 0 elsewhere), so dx
// needs no zeroing first. Grids: x over rows (up to 2^31 - 1), y over tiles of kThreads columns.
#include "ops/token_select_cuda.h"

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"

namespace nlpf::cuda {
namespace {

constexpr int kThreads = 256;

// out [B,C] = x [B,T,C] at token index; block (b, column tile). E: float, or uint16_t for a 16-bit dtype.
template <typename E>
__global__ void __launch_bounds__(kThreads)
    token_select_forward_kernel(E* __restrict__ out, const E* __restrict__ x, int64_t index, int64_t T,
                                int64_t C) {
  const int64_t b = blockIdx.x, c = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (c < C) out[b * C + c] = x[(b * T + index) * C + c];
}

// dx [B,T,C] (=); block (row = b T + t, column tile).
__global__ void __launch_bounds__(kThreads)
    token_select_backward_kernel(float* __restrict__ dx, const float* __restrict__ dout, int64_t index,
                                 int64_t T, int64_t C) {
  const int64_t row = blockIdx.x, c = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= C) return;
  dx[row * C + c] = row % T == index ? dout[(row / T) * C + c] : 0.0f;
}

// Grid (rows, column tiles), checked against CUDA's limits (x < 2^31, y < 2^16).
dim3 row_grid(const char* op, int64_t rows, int64_t C) {
  const int64_t tiles = (C + kThreads - 1) / kThreads;
  NLPF_CHECK(rows <= 0x7fffffff && tiles <= 0xffff, ErrorCode::UNSUPPORTED, op, " (cuda): ", rows,
             " rows of C = ", C, " exceed the grid");
  return dim3(static_cast<unsigned>(rows), static_cast<unsigned>(tiles));
}

template <typename E>
void select_forward(ExecutionContext& ctx, E* out, const E* x, int64_t index, int64_t B, int64_t T,
                    int64_t C) {
  NLPF_CHECK(B >= 0 && T > 0 && C >= 0 && index >= 0 && index < T, ErrorCode::INVALID_ARGUMENT,
             "token_select_forward (cuda): index ", index, " of [", B, ", ", T, ", ", C, "]");
  if (B == 0 || C == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  token_select_forward_kernel<E>
      <<<row_grid("token_select_forward", B, C), kThreads, 0, cuda.stream()>>>(out, x, index, T, C);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace

void token_select_forward(ExecutionContext& ctx, float* out, const float* x, int64_t index, int64_t B,
                          int64_t T, int64_t C) {
  select_forward(ctx, out, x, index, B, T, C);
}

void token_select_forward_16bit(ExecutionContext& ctx, uint16_t* out, const uint16_t* x, int64_t index,
                                int64_t B, int64_t T, int64_t C) {
  select_forward(ctx, out, x, index, B, T, C);
}

void token_select_backward(ExecutionContext& ctx, float* dx, const float* dout, int64_t index, int64_t B,
                           int64_t T, int64_t C) {
  NLPF_CHECK(B >= 0 && T > 0 && C >= 0 && index >= 0 && index < T, ErrorCode::INVALID_ARGUMENT,
             "token_select_backward (cuda): index ", index, " of [", B, ", ", T, ", ", C, "]");
  if (B == 0 || C == 0) return;
  CudaContext& cuda = cuda_context(ctx);
  token_select_backward_kernel<<<row_grid("token_select_backward", B * T, C), kThreads, 0, cuda.stream()>>>(
      dx, dout, index, T, C);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
