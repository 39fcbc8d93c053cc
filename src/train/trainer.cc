// train_classifier / evaluate_classifier. Steps are numbered from 0 inside (the dropout key and the
// schedule), and from 1 in train_log.csv (the number of updates done, as transformers logs global_step).
#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "text/progress.h"
#include "train/interrupt.h"
#include "train/lr_schedule.h"

namespace nlpf {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Text that reads back as the same double (learning rate, loss and norm are meant to be compared).
std::string exact(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

std::string short_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  return text;
}

}  // namespace

uint64_t epoch_shuffle_seed(uint64_t seed, int epoch) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(epoch);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

EvaluationResult evaluate_classifier(BertForSequenceClassification& model, const TokenizedDataset& data,
                                     int64_t batch_size, int64_t max_length, PaddingMode padding) {
  NLPF_CHECK(batch_size > 0, ErrorCode::INVALID_ARGUMENT, "--eval-batch-size must be > 0, got ", batch_size);
  EvaluationResult result;
  result.predictions.assign(static_cast<size_t>(data.size()), 0);
  const std::vector<int64_t> order = evaluation_order(data, batch_size, padding);
  int64_t labelled = 0;
  int64_t correct = 0;
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const int64_t end = std::min(data.size(), begin + batch_size);
    const auto start = std::chrono::steady_clock::now();
    Batch batch = make_batch(data, std::span<const int64_t>(order.data() + begin, order.data() + end),
                             padding, max_length);
    batch.labels.clear();  // no loss needed, and test splits have none (labels are read from `data` below)
    const ModelOutput out = model.forward(batch, ForwardMode::EVAL);
    // A model training on the GPU answers with device logits: B x NL floats come back (the copy waits).
    const Tensor host_logits =
        out.logits.device().type == DeviceType::CPU ? out.logits : to_host(model.context(), out.logits);
    const float* logits = host_logits.data<float>();
    const int64_t num_labels = out.logits.dim(1);
    for (int64_t b = 0; b < batch.B; ++b) {
      int32_t best = 0;
      for (int64_t c = 1; c < num_labels; ++c) {
        if (logits[b * num_labels + c] > logits[b * num_labels + best]) best = static_cast<int32_t>(c);
      }
      const int64_t index = batch.example_index[static_cast<size_t>(b)];
      result.predictions[static_cast<size_t>(index)] = best;
      const int32_t label = data.labels[static_cast<size_t>(index)];
      if (label != kNoLabel) {
        ++labelled;
        correct += label == best ? 1 : 0;
      }
    }
    result.batch_latencies_ms.push_back(seconds_since(start) * 1e3);
  }
  if (labelled > 0) result.accuracy = static_cast<double>(correct) / static_cast<double>(labelled);
  return result;
}

TrainResult train_classifier(BertForSequenceClassification& model, const TokenizedDataset& train_data,
                             const TokenizedDataset& eval_data, const TrainerOptions& options) {
  NLPF_CHECK(options.epochs >= 0, ErrorCode::INVALID_ARGUMENT, "--epochs must be >= 0, got ", options.epochs);
  NLPF_CHECK(options.batch_size >= 1, ErrorCode::INVALID_ARGUMENT, "--batch-size must be >= 1, got ",
             options.batch_size);
  const auto evaluate = [&] {
    return options.evaluate ? options.evaluate(model)
                            : evaluate_classifier(model, eval_data, options.eval_batch_size,
                                                  options.max_length, options.eval_padding);
  };
  TrainResult result;
  std::ostringstream log;
  const bool loss_scaling = options.optimizer.loss_scaling.enabled;
  log << "step,epoch,learning_rate,loss,grad_norm,examples_per_s"
      << (loss_scaling ? ",loss_scale,skipped" : "") << '\n';
  if (options.epochs == 0) {  // the given model as it is: one evaluation as "epoch 0", no step
    EvaluationResult evaluation = evaluate();
    EpochResult epoch_result;
    epoch_result.accuracy = evaluation.accuracy;
    epoch_result.predictions = std::move(evaluation.predictions);
    if (epoch_result.accuracy) result.best_index = 0;
    if (options.on_epoch_end) options.on_epoch_end(epoch_result, model);
    result.epochs.push_back(std::move(epoch_result));
    result.train_log_csv = log.str();
    return result;
  }
  NLPF_CHECK(train_data.size() > 0, ErrorCode::INVALID_ARGUMENT, "the training set has no examples");
  for (int32_t label : train_data.labels) {
    NLPF_CHECK(label != kNoLabel, ErrorCode::INVALID_ARGUMENT,
               "the training set has examples without labels");
  }

  const int64_t steps_per_epoch = (train_data.size() + options.batch_size - 1) / options.batch_size;
  OptimizerSettings settings = options.optimizer;
  settings.total_steps = steps_per_epoch * options.epochs;
  settings.warmup_steps = warmup_steps_for(options.warmup_ratio, settings.total_steps);
  Optimizer optimizer(model, settings);

  double best_accuracy = -1.0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const std::vector<int64_t> order =
        shuffled_order(train_data.size(), epoch_shuffle_seed(options.seed, epoch));
    const std::vector<Batch> batches =
        make_batches(train_data, options.batch_size, PaddingMode::LONGEST, options.max_length, order);
    char label[64];
    std::snprintf(label, sizeof label, "train epoch %d/%d", epoch, options.epochs);
    Progress progress(label, train_data.size(), options.show_progress);
    const double epoch_energy_start = options.read_energy_j ? options.read_energy_j() : 0.0;
    const auto epoch_start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < batches.size(); ++i) {
      const auto step_start = std::chrono::steady_clock::now();
      const StepResult step = optimizer.step(batches[i]);
      const double step_seconds = seconds_since(step_start);
      const double epoch_position =
          (epoch - 1) + static_cast<double>(i + 1) / static_cast<double>(batches.size());
      log << step.step + 1 << ',' << short_number(epoch_position) << ',' << exact(step.learning_rate) << ','
          << exact(step.loss) << ',' << exact(step.grad_norm) << ','
          << short_number(static_cast<double>(batches[i].B) / std::max(step_seconds, 1e-9));
      if (loss_scaling) log << ',' << exact(step.loss_scale) << ',' << (step.skipped ? 1 : 0);
      log << '\n';
      result.skipped_steps += step.skipped ? 1 : 0;
      progress.update(batches[i].B);
      if (options.on_step) options.on_step(step);
      if (interrupt_flag().load()) {
        progress.finish();
        NLPF_THROW(ErrorCode::INTERRUPTED, "interrupted by Ctrl-C after step ", step.step + 1,
                   "; no run directory was completed");
      }
    }
    progress.finish();
    const double train_seconds = seconds_since(epoch_start);  // each step waited for its loss
    const std::optional<double> train_energy_j =
        options.read_energy_j ? std::optional<double>(options.read_energy_j() - epoch_energy_start)
                              : std::nullopt;
    result.train_seconds += train_seconds;
    result.examples += train_data.size();

    EvaluationResult evaluation = evaluate();
    EpochResult epoch_result;
    epoch_result.epoch = epoch;
    epoch_result.steps_done = optimizer.steps_done();
    epoch_result.train_seconds = train_seconds;
    epoch_result.train_energy_j = train_energy_j;
    epoch_result.accuracy = evaluation.accuracy;
    epoch_result.predictions = std::move(evaluation.predictions);
    if (epoch_result.accuracy && *epoch_result.accuracy > best_accuracy) {
      best_accuracy = *epoch_result.accuracy;
      result.best_epoch = epoch;
      result.best_index = static_cast<int>(result.epochs.size());
    }
    if (options.on_epoch_end) options.on_epoch_end(epoch_result, model);
    result.epochs.push_back(std::move(epoch_result));
  }
  result.steps = optimizer.steps_done();
  result.final_loss_scale = optimizer.loss_scale();
  result.train_log_csv = log.str();
  return result;
}

}  // namespace nlpf
