// Philox4x32-10 for host and device code: a port of core/random.cc (same constants, same counter and key
// layout: counter = {block lo, block hi, subsequence lo, subsequence hi}, key = {seed lo, seed hi}), so a
// kernel drawing stream index i of `seed` gets the very bits philox_uniform(seed, i) starts from. Included
// by *.cu files only; kernels that fuse dropout draw their keep mask here (dropout_keep).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace nlpf::cuda {

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

// The 10-round bijection (Random123's philox4x32_10); counter and key as uint4 / uint2 (x, y, z, w = words
// 0..3). The 32x32 -> 64-bit products are exact in both compilations (mul.wide.u32 on the device).
__host__ __device__ inline uint4 philox4x32_10(uint4 counter, uint2 key) {
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key.x += kPhiloxW0;
      key.y += kPhiloxW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * counter.x;
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * counter.z;
    const auto hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const auto hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    counter = make_uint4(hi1 ^ counter.y ^ key.x, lo1, hi0 ^ counter.w ^ key.y, lo0);
  }
  return counter;
}

// The four raw outputs of block `block` of subsequence `subsequence` for `seed` (core's philox_block).
__host__ __device__ inline uint4 philox_block(uint64_t seed, uint64_t block, uint64_t subsequence = 0) {
  return philox4x32_10(
      make_uint4(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                 static_cast<uint32_t>(subsequence), static_cast<uint32_t>(subsequence >> 32)),
      make_uint2(static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)));
}

// Word `lane` (0..3) of a block.
__host__ __device__ inline uint32_t philox_lane(const uint4& x, int lane) {
  return lane == 0 ? x.x : lane == 1 ? x.y : lane == 2 ? x.z : x.w;
}

// Stream element `index` of `seed` as raw bits: lane index % 4 of block index / 4.
__host__ __device__ inline uint32_t philox_bits(uint64_t seed, uint64_t index) {
  return philox_lane(philox_block(seed, index / 4), static_cast<int>(index % 4));
}

// The keep rule of core's dropout mask, in integers. The CPU keeps element x when uint32_to_uniform(x) =
// (x >> 8) 2^-24 < keep_probability (a float; both sides exact). Multiplying by 2^24 is exact, so that is
// (x >> 8) < keep_probability 2^24, and for the integer x >> 8, (x >> 8) < ceil(keep_probability 2^24): the
// threshold below. keep_probability in [0, 1] gives a threshold in [0, 2^24] (2^24: every element kept).
__host__ __device__ inline uint32_t dropout_keep_threshold(float keep_probability) {
  return static_cast<uint32_t>(ceilf(keep_probability * 16777216.0f));
}

// Whether the raw draw x keeps its element under `threshold` (dropout_keep_threshold).
__host__ __device__ inline bool dropout_keep(uint32_t x, uint32_t threshold) {
  return (x >> 8) < threshold;
}

}  // namespace nlpf::cuda
