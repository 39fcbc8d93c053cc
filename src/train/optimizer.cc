// Optimizer::step: the order of operations is that of transformers' Trainer (loss.backward(),
// clip_grad_norm_, optimizer.step() with the learning rate of this step, scheduler.step(), zero_grad).
#include "train/optimizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/clip_grad_norm.h"
#include "train/lr_schedule.h"

namespace nlpf {

ops::WeightDecay weight_decay_for(const std::string& parameter_name) {
  std::string lower = parameter_name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  const bool skip = lower.find("bias") != std::string::npos || lower.find("layernorm") != std::string::npos;
  return skip ? ops::WeightDecay::SKIP : ops::WeightDecay::APPLY;
}

Optimizer::Optimizer(BertForSequenceClassification& model, const OptimizerSettings& settings)
    : model_(model), settings_(settings) {
  NLPF_CHECK(settings.total_steps > 0, ErrorCode::INVALID_ARGUMENT,
             "optimizer: total training steps must be > 0, got ", settings.total_steps,
             " (is the training set empty?)");
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
}

StepResult Optimizer::step(const Batch& batch) {
  NLPF_CHECK(steps_done_ < settings_.total_steps, ErrorCode::INVALID_ARGUMENT, "optimizer: all ",
             settings_.total_steps, " scheduled steps are done");
  StepResult result;
  result.step = steps_done_;
  // The schedule follows the updates made (a skipped step does not advance it, as the Trainer's).
  result.learning_rate = linear_warmup_decay_lr(settings_.learning_rate, updates_done_,
                                                settings_.warmup_steps, settings_.total_steps);
  result.loss_scale = loss_scale_;

  model_.zero_grad();
  const ModelOutput out = model_.forward(batch, ForwardMode::TRAIN, static_cast<uint64_t>(steps_done_));
  NLPF_CHECK(out.loss.has_value(), ErrorCode::INVALID_ARGUMENT, "training step ", steps_done_,
             ": the batch has no labels");
  result.loss = *out.loss;
  NLPF_CHECK(std::isfinite(result.loss), ErrorCode::NUMERIC, "training step ", steps_done_,
             ": the loss is not finite (", result.loss, "); lower --learning-rate or check the data");
  model_.backward(loss_scale_);

  // The gradient map shares storage with the model, so clipping through copies of the handles scales the
  // model's own gradients.
  std::vector<Tensor> grads;
  grads.reserve(model_.gradients().size());
  for (const auto& [name, grad] : model_.gradients()) grads.push_back(grad);
  // Unscaled by 1 / loss_scale_ in the same pass as the clipping (gradients untouched when not finite).
  result.grad_norm = ops::clip_grad_norm(model_.context(), grads, settings_.max_grad_norm, 1.0 / loss_scale_);
  const LossScaling& scaling = settings_.loss_scaling;
  if (!std::isfinite(result.grad_norm) && scaling.enabled) {
    result.skipped = true;
    loss_scale_ *= scaling.backoff;
    updates_since_scale_change_ = 0;
    ++steps_done_;
    return result;
  }
  NLPF_CHECK(std::isfinite(result.grad_norm), ErrorCode::NUMERIC, "training step ", steps_done_,
             ": the gradient norm is not finite (", result.grad_norm, ")");

  ops::AdamWConfig config;
  config.lr = result.learning_rate;
  config.beta1 = settings_.beta1;
  config.beta2 = settings_.beta2;
  config.eps = settings_.eps;
  config.weight_decay = settings_.weight_decay;
  const auto& grads_by_name = model_.gradients();
  std::vector<ops::AdamWParameter> update;  // handles sharing the model's and the moments' storage
  update.reserve(moments_.size());
  for (const auto& [name, param] : model_.parameters()) {
    const Moments& moments = moments_.at(name);
    update.push_back({param, grads_by_name.at(name), moments.m, moments.v, moments.decay});
  }
  ops::adamw_update(model_.context(), update, config, updates_done_ + 1);  // a few launches for the model
  ++updates_done_;
  ++steps_done_;
  if (scaling.enabled && ++updates_since_scale_change_ == scaling.growth_interval) {
    loss_scale_ *= scaling.growth;
    updates_since_scale_change_ = 0;
  }
  return result;
}

}  // namespace nlpf
