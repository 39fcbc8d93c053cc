// CUDA kernels of the BERT embeddings lookup-and-sum (embeddings_cuda.cu), declared without CUDA headers.
// f32 tables, i32 ids. Parameter gradients accumulate (+=), activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"

namespace nlpf::cuda {

// out [B,T,C] = word[input_ids] + position[t] + token_type[token_type_ids], summed in that order (as the
// CPU). input_ids, token_type_ids [B,T]; word [V,C], position [P >= T, C], token_type [TV,C]. The ids live on
// the device, where checking them would make the host wait: they are validated on the host when batches are
// made; here an id outside [0, V) or [0, TV) gives its row NaN (never a read out of bounds).
void embeddings_forward(ExecutionContext& ctx, float* out, const int32_t* input_ids,
                        const int32_t* token_type_ids, const float* word, const float* position,
                        const float* token_type, int64_t B, int64_t T, int64_t C, int64_t V, int64_t TV);

// dword [V,C], dposition [P >= T, C], dtoken_type [TV,C] += the rows of dout [B,T,C] scattered by id,
// deterministically and bit for bit as the CPU (each table row adds its dout rows one by one in row order).
// A row whose id is out of range adds nothing to that table; with padding_mask [B,T] (nullable), a padded row
// of a sequence whose token 0 is not padding adds nothing to any (ops/embeddings.h). Workspace from ctx's
// allocator.
void embeddings_backward(ExecutionContext& ctx, float* dword, float* dposition, float* dtoken_type,
                         const float* dout, const int32_t* input_ids, const int32_t* token_type_ids,
                         const int32_t* padding_mask, int64_t B, int64_t T, int64_t C, int64_t V, int64_t TV);

}  // namespace nlpf::cuda
