// The fine-tuning loop (DESIGN §5): per epoch a seed-derived shuffle, LONGEST-padded batches, one
// Optimizer::step per batch, then an evaluation pass on the evaluation split; the best epoch is the first
// with the highest validation accuracy. Every step goes to train_log.csv. Ctrl-C (train/interrupt.h)
// stops the loop after the current step with Error(INTERRUPTED).
//
// Steps are queued without waiting for their results (train/optimizer.h); the results are collected every
// collect_every_steps steps, at the end of each epoch (before its evaluation) and on Ctrl-C, and the
// train_log.csv rows written then, in step order with the values an eager loop would log.
//
// Padding: training batches are padded to their longest example, not to max_length as the study did.
// Padded positions are masked out of attention and never reach the [CLS] row, so the loss, gradients and
// updates equal max-length padding up to floating-point summation order, at a fraction of the work.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/bert_model.h"
#include "text/batching.h"
#include "train/optimizer.h"

namespace nlpf {

struct EvaluationResult {
  std::vector<int32_t> predictions;  // argmax of the logits (first maximum on ties), in file order
  std::optional<double> accuracy;    // over examples with labels; null when none has one
  std::vector<double> batch_latencies_ms;
};

struct EpochResult {
  int epoch = 0;                         // 1-based
  int64_t steps_done = 0;                // total updates after this epoch
  double train_seconds = 0;              // training steps only (no evaluation)
  std::optional<double> train_energy_j;  // joules over the same steps, when TrainerOptions::read_energy_j
  std::optional<double> accuracy;        // null when the evaluation split has no labels
  std::vector<int32_t> predictions;      // one per evaluation example, in file order
};

struct TrainerOptions {
  int epochs = 2;  // 0: no training, the given model is evaluated once (as epoch 0)
  int64_t batch_size = 32;
  int64_t max_length = 128;  // the padding bound of make_batch; the data must be tokenized to it
  int64_t eval_batch_size = 64;
  // The per-epoch evaluation's padding; Phase 1 passes its --padding so that the measured passes of each
  // epoch's model run the very batches that chose the best epoch.
  PaddingMode eval_padding = kDefaultEvalPadding;
  uint64_t seed = 42;
  double warmup_ratio = 0.06;
  // learning_rate, weight_decay, betas, eps, max_grad_norm; total and warm-up steps are computed by train().
  OptimizerSettings optimizer;
  bool show_progress = false;
  // Steps queued between two collections of their results (each collection waits for the device once);
  // 0: 1 on the CPU (nothing to wait for), 50 on CUDA. At most Optimizer::kRingSteps.
  int64_t collect_every_steps = 0;
  // An energy counter in joules (the meter's), read around each epoch's training steps; empty: none.
  std::function<double()> read_energy_j;
  // The per-epoch evaluation; empty: evaluate_classifier(model, eval_data, eval_batch_size, max_length,
  // eval_padding). A GPU run evaluates with the inference engine it will measure (experiment/gpu_measure.h).
  std::function<EvaluationResult(BertForSequenceClassification&)> evaluate;
  // Called for every step when its result is collected, in step order (tests raise interrupt_flag() here),
  // and after every epoch's evaluation (the model then holds that epoch's weights).
  std::function<void(const StepResult&)> on_step;
  std::function<void(const EpochResult&, BertForSequenceClassification&)> on_epoch_end;
};

struct TrainResult {
  std::vector<EpochResult> epochs;
  int best_epoch = 0;   // 1-based; the first epoch of highest accuracy (0 when none has one, or epochs = 0)
  int best_index = -1;  // its index in `epochs` (0 for the given model when epochs = 0); -1 when none
  int64_t steps = 0;    // steps (batches), skipped ones included
  int64_t skipped_steps = 0;    // loss scaling: steps whose gradients overflowed (no update)
  double final_loss_scale = 1;  // loss scaling: the scale after the last step (1 without)
  // CUDA: batch shapes whose step was captured as a graph, and steps replayed from those graphs
  // (OptimizerSettings::capture_steps); 0 on the CPU.
  int64_t captured_shapes = 0, replayed_steps = 0;
  int64_t examples = 0;         // training examples processed (epochs x training set)
  double train_seconds = 0.0;
  // step,epoch,learning_rate,loss,grad_norm,examples_per_s (DESIGN §3); with loss scaling (fp16) two more
  // columns, loss_scale and skipped (1 for a step whose gradients overflowed and made no update).
  std::string train_log_csv;
};

// Shuffle seed of an epoch (1-based): a splitmix64 mix of the run seed and the epoch number.
uint64_t epoch_shuffle_seed(uint64_t seed, int epoch);

// Trains `model` in place. train_data must have labels; eval_data's predictions are kept per epoch.
// Errors: INVALID_ARGUMENT for bad options or an empty training set, NUMERIC from Optimizer::step,
// INTERRUPTED "interrupted by Ctrl-C after step N; ..." when interrupt_flag() is raised.
TrainResult train_classifier(BertForSequenceClassification& model, const TokenizedDataset& train_data,
                             const TokenizedDataset& eval_data, const TrainerOptions& options);

// One EVAL pass in evaluation_order(data, batch_size, padding) (file order, or length order for BUCKETED),
// batches of batch_size padded as `padding` says (to max_length for MAX_LENGTH); predictions come back in
// file order whatever the order of the batches, and batch_latencies_ms in the order the batches ran.
EvaluationResult evaluate_classifier(BertForSequenceClassification& model, const TokenizedDataset& data,
                                     int64_t batch_size, int64_t max_length, PaddingMode padding);

}  // namespace nlpf
