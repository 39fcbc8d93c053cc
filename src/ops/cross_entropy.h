// Softmax cross-entropy over class logits with integer labels, mean over the batch (HF's
// CrossEntropyLoss with the default mean reduction). Forward saves probs for backward.
// Activation gradients overwrite (=).
#pragma once

#include <cstdint>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// Returns loss = mean_b (logsumexp(logits[b]) - logits[b, labels[b]]); logits [B,NL] f32, labels [B] i32 in
// [0, NL) (else INVALID_ARGUMENT); saves probs [B,NL] f32 = softmax(logits).
double cross_entropy_forward(ExecutionContext& ctx, Tensor& probs, const Tensor& logits,
                             const Tensor& labels);

// The same with the loss written to `loss`, a double in ctx's memory (device memory on CUDA), without
// waiting for the host: a CUDA caller checks the labels before uploading them (an invalid one adds 0 here).
void cross_entropy_forward(ExecutionContext& ctx, Tensor& probs, const Tensor& logits, const Tensor& labels,
                           double* loss);

// dlogits [B,NL] (=) = dloss (probs - onehot(labels)) / B; dloss is the gradient reaching the loss (1 for
// plain training; the loss scale under fp16 loss scaling).
void cross_entropy_backward(ExecutionContext& ctx, Tensor& dlogits, const Tensor& probs, const Tensor& labels,
                            double dloss = 1.0);
// The same with dloss read from ctx's memory (the loss scale of a training step kept on the device).
void cross_entropy_backward(ExecutionContext& ctx, Tensor& dlogits, const Tensor& probs, const Tensor& labels,
                            const double* dloss);

}  // namespace nlpf::ops
