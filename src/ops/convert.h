// Rounding f32 tensors to a 16-bit dtype: mixed-precision training's compute copies of the f32 master
// weights, refreshed before each forward, and a gradient that leaves a pass without a producer of its own
// to write its 16-bit copy.
#pragma once

#include <span>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// One conversion: dst (BF16 or F16) = src (f32, dst's shape) rounded to nearest even.
struct ConvertPair {
  Tensor* dst = nullptr;
  const Tensor* src = nullptr;
};

// Every pair converted; on CUDA a few launches for the lot (a table of tensors per launch, as AdamW's), on
// the CPU the host's rounding (Tensor::to). dst must not overlap any src.
void convert_many(ExecutionContext& ctx, std::span<const ConvertPair> pairs);

}  // namespace nlpf::ops
