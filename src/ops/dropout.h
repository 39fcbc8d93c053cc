// Dropout with the keep mask as an input: out = x * keep / (1 - p). The mask (1 keep, 0 drop) is made by
// the caller from a counter-based RNG keyed by (seed, offset), so CPU and CUDA draw the same mask and the
// op itself stays deterministic. In evaluation, or with p = 0, skip the op (it would be the identity).
// Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// A keep mask drawn where it is applied instead of stored (issue 12: the masks identical to the CPU's without
// being kept): element i of the tensor is kept when philox_uniform(seed, offset + s + i) < 1 - p, with
// s = *step * step_stride where step is set (an int64 in the context's memory, read when the work runs: a
// captured training step's) and 0 otherwise; offset and step_stride multiples of 4 where step is set. The
// mask dropout_mask(seed, offset[, step, step_stride]) writes.
struct DropoutDraw {
  uint64_t seed = 0;
  uint64_t offset = 0;
  const int64_t* step = nullptr;
  uint64_t step_stride = 0;
};

// out = x * keep / (1 - p); x, keep, out: same shape, f32, keep holding 0 or 1; 0 <= p < 1. out may be x.
void dropout_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, const Tensor& keep, double p);
// dx (=) = dout * keep / (1 - p), with the forward's mask and p; dx may be dout.
void dropout_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, const Tensor& keep, double p);
// The same with the mask drawn from `draw` (the backward with the forward's draw): on CUDA one kernel that
// never stores the mask; on the CPU the reference, dropout_mask into a scratch tensor then the forms above.
// Mixed precision: out (dx) may be BF16 or F16 (the f32 result rounded once, a GEMM operand; then it cannot
// be x), and twin, where given (x's shape, BF16 or F16) beside an f32 out, receives out rounded to its dtype.
void dropout_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, double p, const DropoutDraw& draw,
                     Tensor* twin = nullptr);
// out = x * keep / (1 - p) + residual (the drawn dropout, then a residual add, rounded as the two ops in
// turn: the same bits as dropout_forward then add_forward); on CUDA one pass. residual: x's shape, f32; out
// may be x or residual.
void dropout_add_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, const Tensor& residual,
                         double p, const DropoutDraw& draw);
void dropout_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, double p,
                      const DropoutDraw& draw);

// keep (any shape, f32) [i] = 1 if philox_uniform(seed, offset + i) < 1 - p else 0 (core/random.h), i.e.
// each element kept with probability 1 - p. The comparison is in float on exact values, so a CUDA kernel
// drawing the same (seed, offset + i) makes the same mask. The caller advances offset by keep.numel()
// (rounded up to a multiple of 4 if it wants masks to start on a Philox block) between masks.
void dropout_mask(ExecutionContext& ctx, Tensor& keep, double p, uint64_t seed, uint64_t offset);
// The same mask from offset + *step * step_stride, *step read from the context's memory when the work runs
// (device memory on CUDA, host memory on the CPU), so a captured training step draws each replay's masks
// (train/optimizer.h). offset and step_stride must be multiples of 4 (masks start on a Philox block).
void dropout_mask(ExecutionContext& ctx, Tensor& keep, double p, uint64_t seed, uint64_t offset,
                  const int64_t* step, uint64_t step_stride);
// The mask of `draw` (one of the two forms above, as draw.step says): the CPU reference of a drawn dropout.
void dropout_mask(ExecutionContext& ctx, Tensor& keep, double p, const DropoutDraw& draw);
// INVALID_ARGUMENT naming `op` when draw has a step in context memory and an offset or step stride that is
// not a multiple of 4.
void check_dropout_draw(const char* op, const DropoutDraw& draw);

}  // namespace nlpf::ops
