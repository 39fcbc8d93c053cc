// The padding of an inference batch as the CUDA kernels that skip it see it (declared without CUDA headers;
// ops/padded_rows.cuh has the device-side test): row n = b T + t of a [B T, ...] activation is padding where
// attention_mask[b T + t] == 0 and attention_mask[b T] != 0, a padded token of a sequence whose token 0 is
// real. No output of BERT inference depends on such a row (padded keys are masked, the pooler reads token 0;
// ops/bert_fused.h), so the inference LayerNorms write it as zeros without reading their input; at f32 the
// GEMMs after them, run without bias, write zeros there too, which the GELU pass and the LayerNorms then
// leave unread and unwritten (already_zero); and zeros keep every later product over it finite. A sequence
// with no token keeps its rows.
#pragma once

#include <cstdint>

#include "core/error.h"

namespace nlpf::cuda {

struct PaddedRows {
  const int32_t* attention_mask = nullptr;  // [B, T] i32 on the device; nullptr: no row is skipped
  int64_t T = 0;
  // The kernel's output already holds zeros in those rows (an f32 GEMM without bias wrote them from zero
  // rows): left as they are, neither read nor written.
  bool already_zero = false;
};

// A kernel's rows against `padded` (op names the caller): with a mask, T > 0 and the rows B T.
inline void check_padded_rows(const char* op, const PaddedRows& padded, int64_t rows) {
  NLPF_CHECK(padded.attention_mask == nullptr || (padded.T > 0 && rows % padded.T == 0),
             ErrorCode::INVALID_ARGUMENT, op, " (cuda): padded rows of T = ", padded.T, " for ", rows,
             " rows");
}

}  // namespace nlpf::cuda
