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

}  // namespace nlpf::cuda
