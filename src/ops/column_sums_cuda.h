// The second pass of the CUDA kernels' deterministic column sums (the bias gradient's, the LayerNorm
// parameter gradients'), declared without CUDA headers: their first pass leaves one row of double partial
// sums per chunk of rows, this one adds the chunks in a fixed order.
#pragma once

#include <cstdint>

#include "backend/context.h"

namespace nlpf::cuda {

// Column j of partial [chunks, width] (doubles, device) summed over the chunks in a fixed order (chunk lanes
// k, k + 8, ... in order, then the 8 lanes in order: the same bits on every run and device), rounded to float
// and added to lo[j] for j < split, to hi[j - split] from split on: the LayerNorm's [chunks, 2, C] partials
// are width 2C split at C (dweight, then dbias); a bias gradient is width OC with split OC (hi unused).
void finish_column_sums(ExecutionContext& ctx, float* lo, float* hi, int64_t split, const double* partial,
                        int64_t chunks, int64_t width);

}  // namespace nlpf::cuda
