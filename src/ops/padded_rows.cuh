// Device side of ops/padded_rows.h.
#pragma once

#include <cstdint>

#include "ops/padded_rows.h"

namespace nlpf::cuda {

// Whether row n is padding to be written as 0 unread. The threads of one row read the same two words: a
// broadcast load each.
__device__ __forceinline__ bool padded_row(const PaddedRows& padded, int64_t n) {
  const int32_t* mask = padded.attention_mask;
  return mask != nullptr && mask[n] == 0 && mask[n - n % padded.T] != 0;
}

// Whether element i of rows of row_length elements lies in such a row (no division without a mask).
__device__ __forceinline__ bool padded_element(const PaddedRows& padded, int64_t i, int64_t row_length) {
  return padded.attention_mask != nullptr && padded_row(padded, i / row_length);
}

}  // namespace nlpf::cuda
