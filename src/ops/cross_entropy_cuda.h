// CUDA kernels of softmax cross-entropy (cross_entropy_cuda.cu), declared without CUDA headers for the
// dispatch in cross_entropy.cc. f32 logits and probabilities, i32 labels; softmax and loss in double as on
// the CPU. Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"

namespace nlpf::cuda {

// probs [B,NL] (=) softmax(logits [B,NL]); returns mean_b (logsumexp(logits[b]) - logits[b, labels[b]]),
// summed in row order in double, read back to the host (waits for ctx's stream). labels [B] are validated on
// the device and reported with the loss: INVALID_ARGUMENT naming the first label outside [0, NL), with the
// CPU's message (probs are then written but meaningless).
double cross_entropy_forward(ExecutionContext& ctx, float* probs, const float* logits, const int32_t* labels,
                             int64_t B, int64_t NL);

// The same into `loss` (ctx's device memory), with no wait and no label report (the caller checked them).
void cross_entropy_forward(ExecutionContext& ctx, float* probs, const float* logits, const int32_t* labels,
                           int64_t B, int64_t NL, double* loss);

// dlogits [B,NL] (=) dloss (probs - onehot(labels)) / B, in double rounded to f32 as the CPU, with dloss read
// from ctx's device memory where dloss_in_memory is given. Does not wait for the host, so labels are not
// reported here (the forward on the same labels reports them); a label outside [0, NL) subtracts no one-hot
// and reads nothing out of bounds.
void cross_entropy_backward(ExecutionContext& ctx, float* dlogits, const float* probs, const int32_t* labels,
                            double dloss, const double* dloss_in_memory, int64_t B, int64_t NL);

}  // namespace nlpf::cuda
