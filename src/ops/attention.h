// Multi-head self-attention core of BERT (HF BertSelfAttention after the q/k/v projections):
// probs = softmax(q k^T / sqrt(HS) + padding mask), out = dropout(probs) v. Forward saves probs (before
// dropout); backward also needs q, k, v and the dropout keep mask, which the caller keeps.
// Activation gradients overwrite (=); this op has no parameters.
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"
#include "ops/dropout.h"

namespace nlpf::ops {

// Dropout on the attention probabilities: keep [B,NH,T,T] f32 holding 0 or 1, made by the caller from a
// counter-based RNG (see dropout.h), or `draw`, the same mask drawn where it is applied (CUDA: inside the
// softmax kernels, never stored; the CPU draws it into a scratch mask); kept entries scale by 1 / (1 - p).
// Neither: no dropout. At most one of the two.
struct AttentionDropout {
  const Tensor* keep = nullptr;
  double p = 0;
  const DropoutDraw* draw = nullptr;
};

// out [B,T,C] from q, k, v [B,T,C] (C = NH * HS, head h in channels [h HS, (h+1) HS)) and attention_mask
// [B,T] i32 (1 = token, 0 = padding). Saves probs [B,NH,T,T]. HF adds finfo.min to the scores of padded
// keys; the effect, reproduced exactly here, is probability 0 for padded keys, and, in a sequence whose
// keys are all padding, the uniform 1/T (HF's finfo.min absorbs the scores) with no gradient to q, k.
void attention_forward(ExecutionContext& ctx, Tensor& out, Tensor& probs, const Tensor& q, const Tensor& k,
                       const Tensor& v, const Tensor& attention_mask, int64_t NH,
                       AttentionDropout dropout = {});

// dq, dk, dv [B,T,C] (=) from dout [B,T,C] and the forward's q, k, v, attention_mask, probs and dropout.
void attention_backward(ExecutionContext& ctx, Tensor& dq, Tensor& dk, Tensor& dv, const Tensor& dout,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& attention_mask,
                        const Tensor& probs, int64_t NH, AttentionDropout dropout = {});

// The same attention from a packed projection qkv [B,T,3C] (each row q | k | v: what one linear over a
// layer's q, k and v weights stacked [3C, C] writes, one GEMM instead of three), and its backward into dqkv
// [B,T,3C] (=, each row dq | dk | dv). The same values as attention_forward / attention_backward on the three
// parts (CUDA reads and writes the parts in place; the CPU copies them out and back). Mixed precision: out
// and dqkv may be BF16 or F16 (each value rounded once from the f32 result: the next GEMM's operand).
void attention_forward_packed(ExecutionContext& ctx, Tensor& out, Tensor& probs, const Tensor& qkv,
                              const Tensor& attention_mask, int64_t NH, AttentionDropout dropout = {});
void attention_backward_packed(ExecutionContext& ctx, Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                               const Tensor& attention_mask, const Tensor& probs, int64_t NH,
                               AttentionDropout dropout = {});

}  // namespace nlpf::ops
