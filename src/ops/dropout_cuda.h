// CUDA kernels of dropout (dropout_cuda.cu), declared without CUDA headers: the keep mask drawn from Philox
// on the device, bit for bit the CPU's (cpu::dropout_mask), and the masked scale shared by forward and
// backward. All f32. Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "ops/dropout.h"

namespace nlpf::cuda {

// Where a kernel finds element i's keep value (1 or 0): mask[i] where mask is set; else, where drawn is set,
// the draw of ops::DropoutDraw (philox_uniform(seed, offset + *step * step_stride + i) < keep_probability,
// step in device memory or null for 0), read by a kernel through ops/dropout_keep.cuh; neither: no dropout.
struct KeepSource {
  const float* mask = nullptr;
  bool drawn = false;
  uint64_t seed = 0, offset = 0, step_stride = 0;
  const int64_t* step = nullptr;
  float keep_probability = 1;
  bool active() const { return mask != nullptr || drawn; }  // the host's view; kernels ask KeepReader
};

// The keep values of ops::DropoutDraw `draw` at dropout probability p, drawn in the kernel.
inline KeepSource drawn_keep(const ops::DropoutDraw& draw, double p) {
  return KeepSource{.drawn = true,
                    .seed = draw.seed,
                    .offset = draw.offset,
                    .step_stride = draw.step_stride,
                    .step = draw.step,
                    .keep_probability = static_cast<float>(1.0 - p)};
}

// out [N] = x [N] * keep [N] * scale, scale = 1 / (1 - p); out may be x. The backward is the same call on
// (dx, dout).
void dropout_forward(ExecutionContext& ctx, float* out, const float* x, const float* keep, float scale,
                     int64_t N);

// out [N] = x [N] * keep * scale with the keep values of `keep` (drawn, never stored, or a mask), plus
// residual [N] where it is given (added after the product is rounded, as add_forward would); out may be x or
// residual.
void dropout_forward(ExecutionContext& ctx, float* out, const float* x, const KeepSource& keep, float scale,
                     int64_t N, const float* residual = nullptr);
// The same with out of out_dtype (F32, or BF16 / F16: the f32 value rounded to nearest even, mixed
// precision's GEMM operand) and, beside an F32 out, twin [N] (unless nullptr) receiving the value rounded to
// twin_dtype (BF16 or F16). A stored mask takes neither.
void dropout_forward(ExecutionContext& ctx, void* out, DType out_dtype, const float* x,
                     const KeepSource& keep, float scale, int64_t N, const float* residual, void* twin,
                     DType twin_dtype);

// keep [N] = 1 where philox_uniform(seed, offset + i) < float(1 - p), else 0 (core/random.h), the CPU mask
// for any offset (not only multiples of 4). 0 <= p < 1.
void dropout_mask(ExecutionContext& ctx, float* keep, double p, uint64_t seed, uint64_t offset, int64_t N);
// The same from offset + *step * step_stride, *step in device memory read by the kernel (offset and
// step_stride multiples of 4).
void dropout_mask(ExecutionContext& ctx, float* keep, double p, uint64_t seed, uint64_t offset, int64_t N,
                  const int64_t* step, uint64_t step_stride);

}  // namespace nlpf::cuda
