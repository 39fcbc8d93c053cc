// Optimizer::queue_step: the order of operations is that of transformers' Trainer (loss.backward(),
// clip_grad_norm_, optimizer.step() with the learning rate of this step, scheduler.step(), zero_grad), with
// the step's scalars in context memory and its results read back in bulk by collect().
#include "train/optimizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/clip_grad_norm.h"
#include "ops/optimizer_step.h"

namespace nlpf {

ops::WeightDecay weight_decay_for(const std::string& parameter_name) {
  std::string lower = parameter_name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool skip = lower.find("bias") != std::string::npos || lower.find("layernorm") != std::string::npos;
  return skip ? ops::WeightDecay::SKIP : ops::WeightDecay::APPLY;
}

Optimizer::Optimizer(BertForSequenceClassification& model, const OptimizerSettings& settings)
    : model_(model),
      settings_(settings),
      state_buffer_(model.context().allocator(), sizeof(ops::OptimizerStepState)),
      ring_buffer_(model.context().allocator(), kRingSteps * sizeof(ops::StepRecord)),
      table_buffer_(
          model.context().allocator(),
          static_cast<size_t>(2 * std::max<int64_t>(settings.total_steps + 1, 1)) * sizeof(double)) {
  NLPF_CHECK(settings.total_steps > 0, ErrorCode::INVALID_ARGUMENT,
             "optimizer: total training steps must be > 0, got ", settings.total_steps,
             " (is the training set empty?)");
  NLPF_CHECK(static_cast<uint64_t>(settings.total_steps) <= kDropoutStepLimit, ErrorCode::INVALID_ARGUMENT,
             "optimizer: ", settings.total_steps, " training steps exceed the dropout stream's limit of ",
             kDropoutStepLimit, " steps per seed");
  NLPF_CHECK(settings.warmup_steps >= 0 && settings.warmup_steps <= settings.total_steps,
             ErrorCode::INVALID_ARGUMENT, "optimizer: warmup steps ", settings.warmup_steps,
             " outside [0, total steps ", settings.total_steps, "]");
  NLPF_CHECK(settings.max_grad_norm > 0.0, ErrorCode::INVALID_ARGUMENT,
             "optimizer: max_grad_norm must be > 0");
  const LossScaling& scaling = settings.loss_scaling;
  NLPF_CHECK(!scaling.enabled ||
                 (scaling.initial_scale > 0 && std::isfinite(scaling.initial_scale) && scaling.growth >= 1 &&
                  scaling.backoff > 0 && scaling.backoff < 1 && scaling.growth_interval > 0),
             ErrorCode::INVALID_ARGUMENT,
             "optimizer: loss scaling needs a finite initial scale > 0, growth >= 1, ",
             "backoff in (0, 1) and a growth interval > 0");
  if (scaling.enabled) loss_scale_ = scaling.initial_scale;
  ExecutionContext& ctx = model.context();  // the moments live beside the parameters
  for (const auto& [name, param] : model.parameters()) {
    Moments moments{empty_tensor(ctx, DType::F32, param.shape()),
                    empty_tensor(ctx, DType::F32, param.shape()), weight_decay_for(name)};
    fill_zero(ctx, moments.m);
    fill_zero(ctx, moments.v);
    moments_.emplace(name, std::move(moments));
  }
  adamw_config_.beta1 = settings.beta1;
  adamw_config_.beta2 = settings.beta2;
  adamw_config_.eps = settings.eps;
  adamw_config_.weight_decay = settings.weight_decay;

  const bool on_device = ctx.device().type != DeviceType::CPU;  // context memory is the host's on the CPU
  // The step scalars start as the host's did: no update yet, the initial loss scale, no failure.
  ops::OptimizerStepState state{};
  state.loss_scale = loss_scale_;
  state.failed_step = -1;
  state.adamw.skip = 1;
  ctx.copy_bytes(state_buffer_.data(), on_device, &state, false, sizeof state);
  // 1 - beta^s for s = 0..total_steps with std::pow, as adamw_cpu.cc computes them at each step.
  const int64_t entries = settings.total_steps + 1;
  std::vector<double> tables(static_cast<size_t>(2 * entries));
  for (int64_t s = 0; s < entries; ++s) {
    tables[static_cast<size_t>(s)] = 1.0 - std::pow(settings.beta1, static_cast<double>(s));
    tables[static_cast<size_t>(entries + s)] = 1.0 - std::pow(settings.beta2, static_cast<double>(s));
  }
  ctx.copy_bytes(table_buffer_.data(), on_device, tables.data(), false, tables.size() * sizeof(double));
  const double* table = static_cast<const double*>(table_buffer_.data());
  constants_ = {.peak_learning_rate = settings.learning_rate,
                .warmup_steps = settings.warmup_steps,
                .total_steps = settings.total_steps,
                .beta1 = settings.beta1,
                .beta2 = settings.beta2,
                .eps = settings.eps,
                .weight_decay = settings.weight_decay,
                .loss_scaling = scaling.enabled ? 1 : 0,
                .growth = scaling.growth,
                .backoff = scaling.backoff,
                .growth_interval = scaling.growth_interval,
                .bias_correction1 = table,
                .bias_correction2 = table + entries};
}

StepResult Optimizer::step(const Batch& batch) {
  queue_step(batch);
  return collect().back();
}

void Optimizer::queue_step(const Batch& batch) {
  NLPF_CHECK(steps_done_ < settings_.total_steps, ErrorCode::INVALID_ARGUMENT, "optimizer: all ",
             settings_.total_steps, " scheduled steps are done");
  bool labelled = !batch.labels.empty();
  for (int32_t label : batch.labels) labelled = labelled && label != kNoLabel;
  NLPF_CHECK(labelled, ErrorCode::INVALID_ARGUMENT, "training step ", steps_done_,
             ": the batch has no labels");
  if (pending_steps() == kRingSteps) read_pending();  // the ring is full: its records come to the host first

  ExecutionContext& ctx = model_.context();
  if (!settings_.capture_steps || ctx.device().type == DeviceType::CPU) {
    run_step(model_.upload_batch(batch));
  } else {
    StepGraph& graph = graphs_[{batch.B, batch.T}];
    if (!graph.inputs) {
      // The shape's first step runs eagerly: it plans the GEMMs (cuBLASLt's heuristic) outside a capture.
      graph.inputs = model_.upload_batch(batch);
      run_step(*graph.inputs);
    } else {
      model_.upload_batch_into(batch, *graph.inputs);
      if (!graph.work) {
        model_.release_activations();  // nothing allocated outside the capture is freed inside it
        graph.work = ctx.capture([&] { run_step(*graph.inputs); });
        ++captured_shapes_;
      }
      graph.work->replay();
      ++replayed_steps_;
    }
  }
  ++steps_done_;
}

void Optimizer::run_step(const BatchTensors& inputs) {
  ExecutionContext& ctx = model_.context();
  auto* state = static_cast<ops::OptimizerStepState*>(state_buffer_.data());
  auto* ring = static_cast<ops::StepRecord*>(ring_buffer_.data());
  // The order of transformers' Trainer; every scalar is read and written in context memory (the host's
  // decisions of old are decide_step's, see ops/optimizer_step.h), the step index too: state->step, which
  // equals steps_done_ when the work runs (decide_step advances both in step).
  model_.zero_grad();
  model_.forward_train(inputs, DropoutStep{static_cast<uint64_t>(steps_done_), &state->step}, &state->loss);
  model_.backward(&state->loss_scale);
  // The norm of the model's gradients and the factor that clips and unscales them (1 / loss scale): AdamW
  // multiplies each gradient by it as it reads it (the gradients themselves stay as backward left them).
  grads_.clear();
  for (const auto& [name, grad] : model_.gradients()) grads_.push_back(grad);
  ops::clip_grad_norm(ctx, grads_, settings_.max_grad_norm, &state->loss_scale, &state->grad_norm,
                      &state->clip_factor, ops::ClipScaling::BY_READER);  // AdamW applies the factor
  ops::decide_step(ctx, state, ring, kRingSteps, constants_);
  const auto& grads_by_name = model_.gradients();
  update_.clear();
  for (const auto& [name, param] : model_.parameters()) {
    const Moments& moments = moments_.at(name);
    update_.push_back({param, grads_by_name.at(name), moments.m, moments.v, moments.decay});
  }
  ops::adamw_update(ctx, update_, adamw_config_, &state->adamw);  // no update when decide_step skipped
  model_.release_activations();                                   // a captured step frees what it allocated
}

void Optimizer::read_pending() {
  const int64_t first = collected_steps_, count = pending_steps();
  if (count == 0) return;
  ExecutionContext& ctx = model_.context();
  const bool on_device = ctx.device().type != DeviceType::CPU;
  // The pending records, in at most two pieces of the ring (one wait for the first copy).
  std::vector<ops::StepRecord> records(static_cast<size_t>(count));
  const auto* ring = static_cast<const ops::StepRecord*>(ring_buffer_.data());
  const int64_t begin = first % kRingSteps, head = std::min(count, kRingSteps - begin);
  ctx.copy_bytes(records.data(), false, ring + begin, on_device,
                 static_cast<size_t>(head) * sizeof(ops::StepRecord));
  ctx.copy_bytes(records.data() + head, false, ring, on_device,
                 static_cast<size_t>(count - head) * sizeof(ops::StepRecord));
  ops::OptimizerStepState state{};
  ctx.copy_bytes(&state, false, state_buffer_.data(), on_device, sizeof state);
  collected_steps_ = steps_done_;
  updates_done_ = state.updates_done;
  loss_scale_ = state.loss_scale;
  for (const ops::StepRecord& r : records) {
    if (r.error != ops::StepError::NONE) {
      // No update from this step on (decide_step held every later one): forget the later steps and clear
      // the failure, so the optimizer stands where the host's eager check left it (the steps before it stay
      // in collected_).
      steps_done_ = collected_steps_ = r.step;
      state.failed_step = -1;
      state.step = r.step;
      ctx.copy_bytes(state_buffer_.data(), on_device, &state, false, sizeof state);
      if (r.error == ops::StepError::LOSS_NOT_FINITE) {
        NLPF_THROW(ErrorCode::NUMERIC, "training step ", r.step, ": the loss is not finite (", r.loss,
                   "); lower --learning-rate or check the data");
      }
      NLPF_THROW(ErrorCode::NUMERIC, "training step ", r.step, ": the gradient norm is not finite (",
                 r.grad_norm, ")");
    }
    StepResult result;
    result.step = r.step;
    result.loss = r.loss;
    result.grad_norm = r.grad_norm;
    result.learning_rate = r.learning_rate;
    result.loss_scale = r.loss_scale;
    result.skipped = r.skipped != 0;
    collected_.push_back(result);
  }
}

std::vector<StepResult> Optimizer::collect() {
  read_pending();
  std::vector<StepResult> out;
  out.swap(collected_);
  return out;
}

}  // namespace nlpf
