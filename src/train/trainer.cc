// train_classifier / evaluate_classifier. Steps are numbered from 0 inside (the dropout key and the
// schedule), and from 1 in train_log.csv (the number of updates done, as transformers logs global_step).
#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <utility>
#include <vector>

#include "backend/device.h"
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

  NLPF_CHECK(options.collect_every_steps >= 0 && options.collect_every_steps <= Optimizer::kRingSteps,
             ErrorCode::INVALID_ARGUMENT, "collect_every_steps = ", options.collect_every_steps,
             ", expected 0 (automatic) to ", Optimizer::kRingSteps);
  const int64_t collect_every = options.collect_every_steps > 0 ? options.collect_every_steps
                                : model.context().device().type == DeviceType::CPU ? 1
                                                                                   : 50;

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
    // The queued steps whose rows are not written yet: their epoch position and batch size.
    std::vector<std::pair<double, int64_t>> queued;
    auto group_start = epoch_start;
    // Collects the queued steps' results (one wait on CUDA) and writes their rows. examples_per_s: a step no
    // longer waits for itself, so its own wall time means nothing; every step of a collection gets the
    // examples of the collection over the wall time from the end of the previous collection (or the epoch's
    // start) to the end of this one, which covers the device's work on them. With one step per collection
    // (the CPU's default) that is each step's own rate, as before.
    const auto collect = [&] {
      const std::vector<StepResult> steps = optimizer.collect();
      const double seconds = seconds_since(group_start);
      group_start = std::chrono::steady_clock::now();
      NLPF_CHECK(steps.size() == queued.size(), ErrorCode::INTERNAL, "trainer: ", queued.size(),
                 " steps queued but ", steps.size(), " results collected");
      int64_t examples = 0;
      for (const auto& [position, B] : queued) examples += B;
      const double examples_per_s = static_cast<double>(examples) / std::max(seconds, 1e-9);
      for (size_t k = 0; k < steps.size(); ++k) {
        const StepResult& step = steps[k];
        log << step.step + 1 << ',' << short_number(queued[k].first) << ',' << exact(step.learning_rate)
            << ',' << exact(step.loss) << ',' << exact(step.grad_norm) << ',' << short_number(examples_per_s);
        if (loss_scaling) log << ',' << exact(step.loss_scale) << ',' << (step.skipped ? 1 : 0);
        log << '\n';
        result.skipped_steps += step.skipped ? 1 : 0;
        if (options.on_step) options.on_step(step);
      }
      queued.clear();
    };
    for (size_t i = 0; i < batches.size(); ++i) {
      optimizer.queue_step(batches[i]);
      queued.emplace_back((epoch - 1) + static_cast<double>(i + 1) / static_cast<double>(batches.size()),
                          batches[i].B);
      progress.update(batches[i].B);
      if (static_cast<int64_t>(queued.size()) >= collect_every) collect();
      if (interrupt_flag().load()) {
        collect();  // the steps already queued are made and logged
        progress.finish();
        NLPF_THROW(ErrorCode::INTERRUPTED, "interrupted by Ctrl-C after step ", optimizer.steps_done(),
                   "; no run directory was completed");
      }
    }
    collect();
    progress.finish();
    const double train_seconds = seconds_since(epoch_start);  // the last collection waited for the device
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
  result.captured_shapes = optimizer.captured_shapes();
  result.replayed_steps = optimizer.replayed_steps();
  result.train_log_csv = log.str();
  return result;
}

}  // namespace nlpf
