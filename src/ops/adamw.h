// AdamW step with torch.optim.AdamW semantics (decoupled weight decay, bias correction, eps outside the
// square root), updating a parameter and its moments in place. The parameter's gradient is only read.
#pragma once

#include <cstdint>
#include <span>

#include "backend/context.h"
#include "core/tensor.h"
#include "ops/optimizer_step.h"

namespace nlpf::ops {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

// BERT fine-tuning decays every weight but biases and LayerNorm parameters (DESIGN §5).
enum class WeightDecay { APPLY, SKIP };

// One step on param, m (exp_avg), v (exp_avg_sq), all f32 of grad's shape; step counts from 1 (this step
// included), as torch's state["step"] after its increment. In order, as torch's single-tensor AdamW:
//   param *= 1 - lr wd;  m += (1 - beta1)(g - m);  v = beta2 v + (1 - beta2) g^2;
//   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps).
void adamw_update(ExecutionContext& ctx, Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                  const AdamWConfig& config, int64_t step, WeightDecay decay);

// One parameter of a model-wide step: handles that share the tensors' storage.
struct AdamWParameter {
  Tensor param;
  Tensor grad;
  Tensor m, v;
  WeightDecay decay = WeightDecay::APPLY;
};
// The same step on every parameter (each checked as above): on CUDA a few multi-tensor launches for the
// whole model instead of one per parameter, each element's arithmetic the single-tensor kernel's (the same
// bits); on the CPU a loop over the single-tensor op.
void adamw_update(ExecutionContext& ctx, std::span<AdamWParameter> parameters, const AdamWConfig& config,
                  int64_t step);
// The same with this step's learning rate, step count and skip flag read from `scalars` in ctx's memory
// (decide_step writes them; config.lr is not used): no update when scalars->skip is set; each gradient
// element is read times scalars->grad_scale (the clip factor clip_grad_norm left to its reader). On CUDA
// nothing waits for the host and the f32 scalars are decide_step's (the host's roundings, the same bits as
// above).
void adamw_update(ExecutionContext& ctx, std::span<AdamWParameter> parameters, const AdamWConfig& config,
                  const AdamWStepScalars* scalars);

}  // namespace nlpf::ops
