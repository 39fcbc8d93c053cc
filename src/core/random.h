// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC 2011), the generator of cuRAND and PyTorch. Every value is a pure function of (seed, index), so a CUDA
// kernel reproduces a CPU stream exactly: element i of a stream started at `offset` is lane (offset+i)%4
// of the block philox4x32_10(counter = {block lo, block hi, 0, 0}, key = {seed lo, seed hi}) with
// block = (offset+i)/4 (PyTorch's layout: words 0-1 count blocks, words 2-3 hold the subsequence).
#pragma once

#include <array>
#include <cstdint>

#include "core/tensor.h"

namespace nlpf {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// The bare 10-round bijection (Random123's philox4x32_10): four 32-bit outputs per counter.
PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key);

// Four raw outputs of block `block` of subsequence `subsequence` for `seed`.
PhiloxCounter philox_block(uint64_t seed, uint64_t block, uint64_t subsequence = 0);

// Uniform float in [0, 1): the top 24 bits of x times 2^-24. Every value is an exact float (no rounding
// up to 1.0), and a dropout mask can compare x >> 8 with an integer threshold and agree bit for bit.
inline float uint32_to_uniform(uint32_t x) {
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}

// Element `index` of the uniform [0, 1) stream of `seed`.
float philox_uniform(uint64_t seed, uint64_t index);

// Element `index` of the standard normal stream of `seed`. Box-Muller on each block: lanes (0, 1) give
// r cos t and r sin t with r = sqrt(-2 ln u0'), t = 2 pi u1, u0' = ((x0 >> 8) + 1) 2^-24 in (0, 1]
// (never log 0), u1 = x1's uniform; lanes (2, 3) likewise from x2, x3. Computed in double and rounded to
// float, so a CUDA port using double log/sincos matches up to a rare last-bit difference.
float philox_normal(uint64_t seed, uint64_t index);

// Fills a host float tensor (F32, F16 or BF16; 16-bit values are rounded from the float) with
// mean + std * normal, element i taking stream index offset + i.
void fill_normal(Tensor& tensor, float mean, float std, uint64_t seed, uint64_t offset = 0);
// Fills with low + (high - low) * uniform, element i taking stream index offset + i.
void fill_uniform(Tensor& tensor, float low, float high, uint64_t seed, uint64_t offset = 0);

}  // namespace nlpf
