// BERT embeddings: word + position + token type lookup-and-sum (HF BertEmbeddings before its LayerNorm and
// dropout, which are separate ops). Positions are 0..T-1, HF's default position_ids.
// Parameter gradients accumulate (+=), activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace nlpf::ops {

// out [B,T,C] f32 = word[input_ids] + position[t] + token_type[token_type_ids].
// input_ids, token_type_ids: [B,T] i32; word [V,C], position [P,C] (P >= T), token_type [TV,C]: f32.
// An id out of range is INVALID_ARGUMENT. Saves nothing: backward needs only the ids.
void embeddings_forward(Tensor& out, const Tensor& input_ids, const Tensor& token_type_ids,
                        const Tensor& word, const Tensor& position, const Tensor& token_type);

// dword [V,C], dposition [P,C], dtoken_type [TV,C] += the rows of dout [B,T,C] scattered by id.
void embeddings_backward(Tensor& dword, Tensor& dposition, Tensor& dtoken_type, const Tensor& dout,
                         const Tensor& input_ids, const Tensor& token_type_ids);

}  // namespace nlpf::ops

namespace nlpf::cpu {

// Reference kernels (Real = float or double); ids are range-checked before any write.
template <typename Real>
void embeddings_forward(Real* out, const int32_t* input_ids, const int32_t* token_type_ids, const Real* word,
                        const Real* position, const Real* token_type, int64_t B, int64_t T, int64_t C,
                        int64_t V, int64_t P, int64_t TV);
template <typename Real>
void embeddings_backward(Real* dword, Real* dposition, Real* dtoken_type, const Real* dout,
                         const int32_t* input_ids, const int32_t* token_type_ids, int64_t B, int64_t T,
                         int64_t C, int64_t V, int64_t TV);

}  // namespace nlpf::cpu
