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
// INVALID_ARGUMENT on the CPU, its row adds nothing to that table on CUDA. With `row_mask` ([B,T] i32, e.g.
// the attention mask), a row whose mask is 0 adds nothing: a BERT's padded positions, whose gradient is
// exactly zero (no position attends to them and only token 0 reaches the loss), so skipping them changes no
// value and spares the tables' longest runs (the padding id's, the one token type's).
void embeddings_backward(ExecutionContext& ctx, Tensor& dword, Tensor& dposition, Tensor& dtoken_type,
                         const Tensor& dout, const Tensor& input_ids, const Tensor& token_type_ids,
                         const Tensor* row_mask = nullptr);

}  // namespace nlpf::ops
