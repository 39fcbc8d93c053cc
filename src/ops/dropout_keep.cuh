// A kernel's view of a KeepSource (ops/dropout_cuda.h): element i's keep value, read from a mask or drawn
// from Philox as cpu::dropout_mask draws it (backend/cuda/philox.cuh: the same bits, the same integer keep
// rule), so a kernel that applies dropout needs no mask in memory. Included by *.cu files only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/philox.cuh"
#include "ops/dropout_cuda.h"

namespace nlpf::cuda {

// Element j of a warp lane that owns runs of 4 consecutive elements of a row, the layout KeepReader::four
// serves (one Philox block per run): 4 (lane + 32 (j / 4)) + j % 4.
__device__ __forceinline__ int64_t run4_element(int lane, int j) {
  return 4 * (lane + 32 * (j / 4)) + j % 4;
}

class KeepReader {
 public:
  // Reads the step (device memory) once per thread.
  __device__ explicit KeepReader(const KeepSource& source)
      : mask_(source.mask),
        drawn_(source.drawn),
        seed_(source.seed),
        base_(source.offset + (source.drawn && source.step != nullptr
                                   ? static_cast<uint64_t>(*source.step) * source.step_stride
                                   : uint64_t{0})),
        threshold_(dropout_keep_threshold(source.keep_probability)) {}
  __device__ bool active() const { return mask_ != nullptr || drawn_; }
  // Element i's keep value, 1.0f or 0.0f (active() only).
  __device__ float operator()(int64_t i) const {
    if (mask_ != nullptr) return mask_[i];
    return dropout_keep(philox_bits(seed_, base_ + static_cast<uint64_t>(i)), threshold_) ? 1.0f : 0.0f;
  }
  // The keep values of elements i .. i + 3 (operator()'s, the same bits) from the one or two Philox blocks
  // they lie in: a block holds four consecutive stream elements, so a thread that owns four consecutive
  // elements draws a quarter of the blocks operator() would (10 rounds of 32-bit products each). Only the
  // first `count` (1..4) are elements of the tensor: a stored mask is read there only (the rest get 1).
  __device__ void four(int64_t i, float (&keep)[4], int count = 4) const {
    if (mask_ != nullptr) {
#pragma unroll
      for (int e = 0; e < 4; ++e) keep[e] = e < count ? mask_[i + e] : 1.0f;
      return;
    }
    const uint64_t first = base_ + static_cast<uint64_t>(i);
    const int shift = static_cast<int>(first % 4);
    const uint4 a = philox_block(seed_, first / 4);
    const uint4 b = shift == 0 ? a : philox_block(seed_, first / 4 + 1);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const uint32_t word = shift + e < 4 ? philox_lane(a, shift + e) : philox_lane(b, shift + e - 4);
      keep[e] = dropout_keep(word, threshold_) ? 1.0f : 0.0f;
    }
  }

 private:
  const float* mask_;
  bool drawn_;
  uint64_t seed_, base_;
  uint32_t threshold_;
};

}  // namespace nlpf::cuda
