// Dropout with the keep mask as an input: out = x * keep / (1 - p). The mask (1 keep, 0 drop) is made by
// the caller from a counter-based RNG keyed by (seed, offset), so CPU and CUDA draw the same mask and the
// op itself stays deterministic. In evaluation, or with p = 0, skip the op (it would be the identity).
// Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// out = x * keep / (1 - p); x, keep, out: same shape, f32, keep holding 0 or 1; 0 <= p < 1. out may be x.
void dropout_forward(ExecutionContext& ctx, Tensor& out, const Tensor& x, const Tensor& keep, double p);
// dx (=) = dout * keep / (1 - p), with the forward's mask and p; dx may be dout.
void dropout_backward(ExecutionContext& ctx, Tensor& dx, const Tensor& dout, const Tensor& keep, double p);

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

}  // namespace nlpf::ops
