// CPU reference kernels of ops/embeddings.h on raw row-major arrays (Real = float or double, so that gradient
// tests run in double). Only src/ops/embeddings*.cc and tests include this; the Tensor-level op in
// ops/embeddings.h dispatches here.
#pragma once

#include <cstdint>

#include "ops/embeddings.h"

namespace nlpf::cpu {

// Reference kernels (Real = float or double); ids are range-checked before any write. padding_mask [B,T]
// or nullptr: backward skips the padded rows of a sequence whose token 0 is not padding (embeddings.h).
template <typename Real>
void embeddings_forward(Real* out, const int32_t* input_ids, const int32_t* token_type_ids, const Real* word,
                        const Real* position, const Real* token_type, int64_t B, int64_t T, int64_t C,
                        int64_t V, int64_t P, int64_t TV);
template <typename Real>
void embeddings_backward(Real* dword, Real* dposition, Real* dtoken_type, const Real* dout,
                         const int32_t* input_ids, const int32_t* token_type_ids, const int32_t* padding_mask,
                         int64_t B, int64_t T, int64_t C, int64_t V, int64_t TV);

}  // namespace nlpf::cpu
