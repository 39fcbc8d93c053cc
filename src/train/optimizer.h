// One optimisation step of the fine-tuning recipe (DESIGN §5) on a given batch: forward (TRAIN, dropout
// keyed by the step), backward, global-norm clipping, AdamW with the scheduled learning rate. The AdamW
// moments (two f32 tensors per parameter) live here; the model owns parameters and gradients.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/tensor.h"
#include "model/bert_model.h"
#include "ops/adamw.h"
#include "text/batching.h"

namespace nlpf {

// transformers' Trainer.get_decay_parameter_names, by name: no decay for biases and LayerNorm parameters
// (any name containing "bias", or "layernorm" in any case), decay for every other weight.
ops::WeightDecay weight_decay_for(const std::string& parameter_name);

struct OptimizerSettings {
  double learning_rate = 3e-5;  // peak of the schedule
  double weight_decay = 0.01;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double max_grad_norm = 1.0;
  int64_t total_steps = 0;
  int64_t warmup_steps = 0;
};

struct StepResult {
  int64_t step = 0;          // 0-based index of the update
  double loss = 0.0;         // mean cross-entropy of the batch before the update
  double grad_norm = 0.0;    // global L2 norm before clipping
  double learning_rate = 0;  // the one this update used
};

class Optimizer {
 public:
  // Errors: INVALID_ARGUMENT for total_steps <= 0, warmup_steps outside [0, total_steps], or a
  // max_grad_norm <= 0.
  Optimizer(BertForSequenceClassification& model, const OptimizerSettings& settings);

  // zero_grad, forward(batch, TRAIN, step), backward, clip, AdamW; `batch` must carry labels.
  // Errors: NUMERIC naming the step for a non-finite loss or gradient norm (the parameters are untouched
  // then); INVALID_ARGUMENT once total_steps updates were made.
  StepResult step(const Batch& batch);

  int64_t steps_done() const { return steps_done_; }
  const OptimizerSettings& settings() const { return settings_; }

 private:
  struct Moments {
    Tensor m, v;
    ops::WeightDecay decay;
  };
  BertForSequenceClassification& model_;
  OptimizerSettings settings_;
  std::map<std::string, Moments> moments_;  // by canonical parameter name
  int64_t steps_done_ = 0;
};

}  // namespace nlpf
