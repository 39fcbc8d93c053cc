// One optimisation step of the fine-tuning recipe (DESIGN §5) on a given batch: forward (TRAIN, dropout
// keyed by the step), backward, global-norm clipping, AdamW with the scheduled learning rate. The AdamW
// moments (two f32 tensors per parameter) live here; the model owns parameters and gradients. The step's
// scalars (loss, norm, loss scale, counters, learning rate) live in the model context's memory (ops/
// optimizer_step.h), so a CUDA step queues its work without waiting for the host; each step's results go to
// a ring of StepRecords there, which collect() reads in bulk (one wait for many steps).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "model/bert_model.h"
#include "ops/adamw.h"
#include "ops/optimizer_step.h"
#include "text/batching.h"

namespace nlpf {

// transformers' Trainer.get_decay_parameter_names, by name: no decay for biases and LayerNorm parameters
// (any name containing "bias", or "layernorm" in any case), decay for every other weight.
ops::WeightDecay weight_decay_for(const std::string& parameter_name);

// Dynamic loss scaling for fp16 training, torch.cuda.amp.GradScaler's rule with its defaults (what the
// transformers Trainer runs with fp16): backward starts from the loss gradient times the scale; a step whose
// gradients are not finite is skipped (no update, the learning-rate schedule and AdamW's step count do not
// advance) and the scale multiplied by backoff; after growth_interval updates in a row it is multiplied by
// growth. Scales are powers of two, so scaling and unscaling are exact.
struct LossScaling {
  bool enabled = false;
  double initial_scale = 65536.0;
  double growth = 2.0;
  double backoff = 0.5;
  int64_t growth_interval = 2000;
};

struct OptimizerSettings {
  double learning_rate = 3e-5;  // peak of the schedule
  double weight_decay = 0.01;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double max_grad_norm = 1.0;
  int64_t total_steps = 0;
  int64_t warmup_steps = 0;
  LossScaling loss_scaling;
  // On CUDA: the step of each batch shape (B, T) runs eagerly the first time, is captured as a CUDA graph the
  // second and replayed from then on (the batch uploaded into that shape's tensors first); false: every step
  // eager. The CPU runs every step eagerly.
  bool capture_steps = true;
};

struct StepResult {
  int64_t step = 0;          // 0-based index of the step (of the batch: skipped steps count)
  double loss = 0.0;         // mean cross-entropy of the batch before the update
  double grad_norm = 0.0;    // global L2 norm before clipping (unscaled); not finite for a skipped step
  double learning_rate = 0;  // the one this update used (or would have)
  double loss_scale = 1.0;   // the loss scale of this step (1 without loss scaling)
  bool skipped = false;      // loss scaling only: the gradients overflowed, no update was made
};

class Optimizer {
 public:
  // Errors: INVALID_ARGUMENT for total_steps <= 0, warmup_steps outside [0, total_steps], or a
  // max_grad_norm <= 0.
  Optimizer(BertForSequenceClassification& model, const OptimizerSettings& settings);

  // queue_step then collect(): the step's result, read at once (on CUDA the host waits for the step).
  // Errors: NUMERIC naming the step for a non-finite loss, or a non-finite gradient norm without loss scaling
  // (the parameters are untouched then); INVALID_ARGUMENT once total_steps steps were made.
  StepResult step(const Batch& batch);

  // zero_grad, forward(batch, TRAIN, step), backward, clip, AdamW, all queued on the model's context with the
  // scalars in its memory: on CUDA nothing waits for the step's results (the batch upload still copies from
  // pageable memory). `batch` must carry labels. When the ring is full, the pending results are collected
  // first (one wait) and kept for the next collect(). Errors: INVALID_ARGUMENT for a batch without labels or
  // once total_steps steps were made; NUMERIC from an automatic collection.
  void queue_step(const Batch& batch);
  // The results of the steps queued since the last collect(), in order (waits for them on CUDA). A step with
  // a non-finite loss (or norm, without loss scaling) made no update, nor did any step after it: NUMERIC
  // naming that step, with steps_done() set back to it, as if the later steps had not been queued.
  std::vector<StepResult> collect();
  int64_t pending_steps() const { return steps_done_ - collected_steps_; }  // queued, not yet collected
  // CUDA graphs captured (one per batch shape seen twice) and steps replayed from them.
  int64_t captured_shapes() const { return captured_shapes_; }
  int64_t replayed_steps() const { return replayed_steps_; }

  int64_t steps_done() const { return steps_done_; }  // steps (batches) queued, skipped ones included
  // As of the last collect() (or step()): steps that updated the parameters, and the next step's loss scale
  // (1 without loss scaling).
  int64_t updates_done() const { return updates_done_; }
  double loss_scale() const { return loss_scale_; }
  const OptimizerSettings& settings() const { return settings_; }

  static constexpr int64_t kRingSteps = 256;  // StepRecords kept in context memory between collections

 private:
  struct Moments {
    Tensor m, v;
    ops::WeightDecay decay;
  };
  BertForSequenceClassification& model_;
  OptimizerSettings settings_;
  // Reads the ring's pending records (one wait) into collected_; throws NUMERIC for a failed step.
  void read_pending();
  // zero_grad, forward, backward, clip, decide_step, AdamW and the release of the activations, with every
  // per-step value read from context memory (the step's dropout masks from the state's step): the work
  // captured once per shape.
  void run_step(const BatchTensors& inputs);
  struct StepGraph {
    std::optional<BatchTensors> inputs;  // the shape's batch tensors, uploaded into before each step
    std::unique_ptr<CapturedWork> work;  // captured on the shape's second step
  };
  std::map<std::pair<int64_t, int64_t>, StepGraph> graphs_;  // by (B, T)
  int64_t captured_shapes_ = 0, replayed_steps_ = 0;

  std::map<std::string, Moments> moments_;  // by canonical parameter name
  // Context memory: the OptimizerStepState, the ring of kRingSteps StepRecords, and the bias-correction
  // tables [2][total_steps + 1] of OptimizerStepConstants.
  Buffer state_buffer_, ring_buffer_, table_buffer_;
  ops::OptimizerStepConstants constants_{};
  std::vector<Tensor> grads_;                // handles sharing the model's gradient storage, for clipping
  std::vector<ops::AdamWParameter> update_;  // handles sharing the parameters', gradients' and moments'
  ops::AdamWConfig adamw_config_;
  std::vector<StepResult> collected_;  // read from the ring, not yet returned by collect()
  int64_t steps_done_ = 0, collected_steps_ = 0, updates_done_ = 0;
  double loss_scale_ = 1.0;
};

}  // namespace nlpf
