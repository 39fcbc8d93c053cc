// BERT embeddings: word + position + token type lookup-and-sum (HF BertEmbeddings before its LayerNorm and
// dropout, which are separate ops). Positions are 0..T-1, HF's default position_ids.
// Parameter gradients accumulate (+=), activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// out [B,T,C] f32 = word[input_ids] + position[t] + token_type[token_type_ids].
// input_ids, token_type_ids: [B,T] i32; word [V,C], position [P,C] (P >= T), token_type [TV,C]: f32.
// An id out of range is INVALID_ARGUMENT on the CPU; on CUDA the ids stay on the device (a check would make
// the host wait), so its row is NaN there (see embeddings_cuda.h). Saves nothing: backward needs only the
// ids.
void embeddings_forward(ExecutionContext& ctx, Tensor& out, const Tensor& input_ids,
                        const Tensor& token_type_ids, const Tensor& word, const Tensor& position,
                        const Tensor& token_type);

// dword [V,C], dposition [P,C], dtoken_type [TV,C] += the rows of dout [B,T,C] scattered by id; each table
// row adds its dout rows in row order on both devices (deterministic, the same bits). An id out of range:
// INVALID_ARGUMENT on the CPU, its row adds nothing to that table on CUDA. With `padding_mask` ([B,T] i32,
// the attention mask), a padded row (b, t) of a sequence whose token 0 is not padding adds nothing: in a
// BERT its gradient is exactly zero (no position attends to a padded key, and only token 0 reaches the
// loss), so skipping it changes no value and spares the tables' longest runs (the padding id's, the token
// type's). A sequence whose token 0 is padding adds every row (its token 0 feeds the loss).
void embeddings_backward(ExecutionContext& ctx, Tensor& dword, Tensor& dposition, Tensor& dtoken_type,
                         const Tensor& dout, const Tensor& input_ids, const Tensor& token_type_ids,
                         const Tensor* padding_mask = nullptr);

}  // namespace nlpf::ops
