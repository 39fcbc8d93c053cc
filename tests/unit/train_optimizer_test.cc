// Optimizer: decay selection by name, bit-identical runs from the same seed (dropout on), a non-finite
// loss refused with the step named, argument checks, and dynamic loss scaling (fp16's): exact when nothing
// overflows (power-of-two scales), an overflowing step skipped with the scale backed off and the schedule
// held. Queued steps (results collected later, the CUDA path's) give the eager results bit for bit, and a
// non-finite loss among them names its step and leaves the parameters as the step before left them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "ops/optimizer_step.h"
#include "train/lr_schedule.h"
#include "train/optimizer.h"

namespace nlpf {
namespace {

const std::filesystem::path kTiny = std::filesystem::path(NLPF_TEST_DATA) / "checkpoint" / "tiny";

TEST(TrainDecay, BiasesAndLayerNormSkipEverythingElseDecays) {
  using ops::WeightDecay;
  EXPECT_EQ(weight_decay_for("bert.embeddings.word_embeddings.weight"), WeightDecay::APPLY);
  EXPECT_EQ(weight_decay_for("bert.encoder.layer.0.attention.self.query.weight"), WeightDecay::APPLY);
  EXPECT_EQ(weight_decay_for("bert.pooler.dense.weight"), WeightDecay::APPLY);
  EXPECT_EQ(weight_decay_for("classifier.weight"), WeightDecay::APPLY);
  EXPECT_EQ(weight_decay_for("bert.encoder.layer.0.attention.self.query.bias"), WeightDecay::SKIP);
  EXPECT_EQ(weight_decay_for("classifier.bias"), WeightDecay::SKIP);
  EXPECT_EQ(weight_decay_for("bert.embeddings.LayerNorm.weight"), WeightDecay::SKIP);
  EXPECT_EQ(weight_decay_for("bert.encoder.layer.1.output.LayerNorm.weight"), WeightDecay::SKIP);
  EXPECT_EQ(weight_decay_for("bert.encoder.layer.1.attention.output.LayerNorm.bias"), WeightDecay::SKIP);
}

TEST(TrainDecay, EveryModelParameterIsClassifiedAsHfDoes) {
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  int decayed = 0;
  for (const ParameterSpec& spec : bert_parameter_specs(config)) {
    // HF: weights of Linear and Embedding modules decay; LayerNorm parameters and all biases do not.
    const bool hf_decays = spec.name.ends_with(".weight") && spec.name.find("LayerNorm") == std::string::npos;
    EXPECT_EQ(weight_decay_for(spec.name) == ops::WeightDecay::APPLY, hf_decays) << spec.name;
    decayed += hf_decays;
  }
  // 3 embeddings + 6 per layer (q, k, v, attention output, intermediate, output) x 2 + pooler + classifier.
  EXPECT_EQ(decayed, 3 + 6 * 2 + 2);
}

Batch tiny_batch(int64_t B, int64_t T, uint32_t salt) {
  Batch batch;
  batch.B = B;
  batch.T = T;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t length = T - (b % 3);  // some padding
    for (int64_t t = 0; t < T; ++t) {
      const bool token = t < length;
      batch.input_ids.push_back(token ? static_cast<int32_t>((b * 7 + t * 5 + salt) % 30 + 1) : 0);
      batch.token_type_ids.push_back(0);
      batch.attention_mask.push_back(token ? 1 : 0);
    }
    batch.labels.push_back(static_cast<int32_t>((b + salt) % 2));
    batch.example_index.push_back(b);
  }
  return batch;
}

OptimizerSettings tiny_settings() {
  OptimizerSettings s;
  s.learning_rate = 1e-2;
  s.weight_decay = 0.01;
  s.total_steps = 6;
  s.warmup_steps = 2;
  return s;
}

std::map<std::string, std::vector<float>> train_tiny_run(uint64_t seed) {
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification model(config, seed);
  model.set_dropout(DropoutSettings::from_config(config, seed));
  Optimizer optimizer(model, tiny_settings());
  for (uint32_t s = 0; s < 5; ++s) optimizer.step(tiny_batch(4, 9, s));
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, p] : model.parameters()) {
    out[name] = std::vector<float>(p.data<float>(), p.data<float>() + p.numel());
  }
  return out;
}

TEST(TrainDeterminism, SameSeedGivesBitIdenticalParameters) {
  const auto a = train_tiny_run(7);
  const auto b = train_tiny_run(7);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, values] : a) {
    const std::vector<float>& other = b.at(name);
    ASSERT_EQ(values.size(), other.size()) << name;
    EXPECT_EQ(std::memcmp(values.data(), other.data(), values.size() * sizeof(float)), 0) << name;
  }
  // A different seed gives a different run, so the comparison above can fail.
  const auto c = train_tiny_run(8);
  const auto& w = a.at("classifier.weight");
  EXPECT_NE(std::memcmp(w.data(), c.at("classifier.weight").data(), w.size() * sizeof(float)), 0);
}

TEST(TrainOptimizer, StepReportsScheduleAndMovesParameters) {
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification model(config, 3);
  const std::vector<float> before(model.parameters().at("classifier.weight").data<float>(),
                                  model.parameters().at("classifier.weight").data<float>() + 2 * 8);
  Optimizer optimizer(model, tiny_settings());
  const StepResult first = optimizer.step(tiny_batch(4, 9, 0));
  EXPECT_EQ(first.step, 0);
  EXPECT_EQ(first.learning_rate, 0.0);  // warm-up starts at 0, as HF
  EXPECT_TRUE(std::isfinite(first.loss));
  EXPECT_GT(first.grad_norm, 0.0);
  const StepResult second = optimizer.step(tiny_batch(4, 9, 1));
  EXPECT_EQ(second.learning_rate, 1e-2 * 0.5);
  EXPECT_EQ(optimizer.steps_done(), 2);
  const float* after = model.parameters().at("classifier.weight").data<float>();
  bool moved = false;
  for (size_t i = 0; i < before.size(); ++i) moved |= after[i] != before[i];
  EXPECT_TRUE(moved);
}

std::map<std::string, std::vector<float>> parameter_values(BertForSequenceClassification& model) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, p] : model.parameters()) {
    out[name] = std::vector<float>(p.data<float>(), p.data<float>() + p.numel());
  }
  return out;
}

TEST(TrainLossScaling, WithoutOverflowItIsExactAndTheScaleGrows) {
  // Scaling the loss gradient by 2^16 scales every gradient exactly (every backward op is linear in it), and
  // the norm and the unscaling divide it out exactly: the run is the unscaled run bit for bit.
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification plain(config, 11), scaled(config, 11);
  plain.set_dropout(DropoutSettings::from_config(config, 11));
  scaled.set_dropout(DropoutSettings::from_config(config, 11));
  OptimizerSettings settings = tiny_settings();
  Optimizer plain_opt(plain, settings);
  settings.loss_scaling = {.enabled = true, .initial_scale = 65536.0, .growth_interval = 2};
  Optimizer scaled_opt(scaled, settings);
  for (uint32_t s = 0; s < 5; ++s) {
    const StepResult a = plain_opt.step(tiny_batch(4, 9, s)), b = scaled_opt.step(tiny_batch(4, 9, s));
    EXPECT_FALSE(b.skipped) << "step " << s;
    EXPECT_EQ(b.loss_scale, 65536.0 * std::pow(2.0, s / 2)) << "step " << s;  // doubles every 2 updates
    EXPECT_EQ(a.loss, b.loss) << "step " << s;
    EXPECT_EQ(a.grad_norm, b.grad_norm) << "step " << s;
    EXPECT_EQ(a.learning_rate, b.learning_rate) << "step " << s;
  }
  EXPECT_EQ(scaled_opt.updates_done(), 5);
  const auto a = parameter_values(plain), b = parameter_values(scaled);
  for (const auto& [name, values] : a) {
    EXPECT_EQ(std::memcmp(values.data(), b.at(name).data(), values.size() * sizeof(float)), 0) << name;
  }
}

TEST(TrainLossScaling, AnOverflowSkipsTheStepBacksOffAndHoldsTheSchedule) {
  // 2^200 is finite in double but not in f32: the gradients overflow, the step is skipped and the scale
  // backed off (by 2^-40 here, to reach a finite scale in a few steps) until a step updates.
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification model(config, 12);
  OptimizerSettings settings = tiny_settings();
  settings.total_steps = 8;
  settings.loss_scaling = {
      .enabled = true, .initial_scale = std::pow(2.0, 200), .backoff = std::pow(2.0, -40)};
  Optimizer optimizer(model, settings);
  const auto before = parameter_values(model);
  for (uint32_t s = 0; s < 2; ++s) {
    const StepResult r = optimizer.step(tiny_batch(4, 9, s));
    EXPECT_TRUE(r.skipped) << "step " << s;
    EXPECT_FALSE(std::isfinite(r.grad_norm)) << "step " << s;
    EXPECT_TRUE(std::isfinite(r.loss)) << "step " << s;
    EXPECT_EQ(r.learning_rate, 0.0) << "step " << s;  // the schedule does not advance on a skipped step
    EXPECT_EQ(r.loss_scale, std::pow(2.0, 200 - 40 * static_cast<int>(s))) << "step " << s;
  }
  EXPECT_EQ(optimizer.steps_done(), 2);
  EXPECT_EQ(optimizer.updates_done(), 0);
  EXPECT_EQ(optimizer.loss_scale(), std::pow(2.0, 120));
  const auto after_skips = parameter_values(model);
  for (const auto& [name, values] : before) {
    EXPECT_EQ(std::memcmp(values.data(), after_skips.at(name).data(), values.size() * sizeof(float)), 0)
        << name << " moved on a skipped step";
  }
  StepResult r;
  for (uint32_t s = 2; s < 8 && optimizer.updates_done() == 0; ++s) r = optimizer.step(tiny_batch(4, 9, s));
  ASSERT_EQ(optimizer.updates_done(), 1) << "no step updated after backing off";
  EXPECT_FALSE(r.skipped);
  EXPECT_TRUE(std::isfinite(r.grad_norm));
  EXPECT_EQ(r.learning_rate, 0.0);  // the first update is the schedule's first step
  EXPECT_LE(r.loss_scale, std::pow(2.0, 120));
}

TEST(TrainOptimizer, NonFiniteLossNamesTheStep) {
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification model(config, 3);
  Optimizer optimizer(model, tiny_settings());
  optimizer.step(tiny_batch(4, 9, 0));
  Tensor w = model.parameters().at("classifier.weight");
  w.data<float>()[0] = std::nanf("");
  try {
    optimizer.step(tiny_batch(4, 9, 1));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NUMERIC);
    EXPECT_NE(std::string(e.what()).find("training step 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("loss"), std::string::npos) << e.what();
  }
  EXPECT_EQ(optimizer.steps_done(), 1);
}

void expect_same_results(const std::vector<StepResult>& queued, const std::vector<StepResult>& eager) {
  ASSERT_EQ(queued.size(), eager.size());
  for (size_t i = 0; i < eager.size(); ++i) {
    EXPECT_EQ(queued[i].step, eager[i].step) << "row " << i;
    EXPECT_EQ(queued[i].loss, eager[i].loss) << "step " << i;
    // The bits: a skipped step's norm is NaN.
    EXPECT_EQ(std::memcmp(&queued[i].grad_norm, &eager[i].grad_norm, sizeof(double)), 0)
        << "step " << i << ": " << queued[i].grad_norm << " vs " << eager[i].grad_norm;
    EXPECT_EQ(queued[i].learning_rate, eager[i].learning_rate) << "step " << i;
    EXPECT_EQ(queued[i].loss_scale, eager[i].loss_scale) << "step " << i;
    EXPECT_EQ(queued[i].skipped, eager[i].skipped) << "step " << i;
  }
}

void expect_same_parameters(BertForSequenceClassification& a, BertForSequenceClassification& b) {
  const auto pa = parameter_values(a), pb = parameter_values(b);
  for (const auto& [name, values] : pa) {
    EXPECT_EQ(std::memcmp(values.data(), pb.at(name).data(), values.size() * sizeof(float)), 0) << name;
  }
}

TEST(TrainOptimizer, QueuedStepsCollectTheEagerResults) {
  // Loss scaling from 2^200 with a 2^-40 backoff: skipped steps, backoffs, updates and a growth (interval 2)
  // all happen among the queued steps, which the host reads only at the end.
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification eager_model(config, 13), queued_model(config, 13);
  eager_model.set_dropout(DropoutSettings::from_config(config, 13));
  queued_model.set_dropout(DropoutSettings::from_config(config, 13));
  OptimizerSettings settings = tiny_settings();
  settings.total_steps = 12;
  settings.loss_scaling = {.enabled = true,
                           .initial_scale = std::pow(2.0, 200),
                           .backoff = std::pow(2.0, -40),
                           .growth_interval = 2};
  Optimizer eager(eager_model, settings), queued(queued_model, settings);
  std::vector<StepResult> expected;
  for (uint32_t s = 0; s < 12; ++s) expected.push_back(eager.step(tiny_batch(4, 9, s)));
  for (uint32_t s = 0; s < 12; ++s) queued.queue_step(tiny_batch(4, 9, s));
  EXPECT_EQ(queued.pending_steps(), 12);
  const std::vector<StepResult> got = queued.collect();
  EXPECT_EQ(queued.pending_steps(), 0);
  expect_same_results(got, expected);
  int64_t skipped = 0;
  for (const StepResult& r : expected) skipped += r.skipped ? 1 : 0;
  EXPECT_GT(skipped, 0) << "no step overflowed: the test does not cover skipping";
  EXPECT_LE(skipped, 10) << "fewer than two updates: the test does not cover growth";
  EXPECT_EQ(queued.updates_done(), eager.updates_done());
  EXPECT_EQ(queued.loss_scale(), eager.loss_scale());
  EXPECT_EQ(queued.steps_done(), 12);
  expect_same_parameters(queued_model, eager_model);
}

TEST(TrainOptimizer, QueuedStepsBeyondTheRingCollectInOrder) {
  // More steps than the ring holds between two collections: the optimizer reads the full ring itself, and a
  // later collection wraps around it.
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification eager_model(config, 14), queued_model(config, 14);
  OptimizerSettings settings = tiny_settings();
  const int64_t steps = Optimizer::kRingSteps + 40;
  settings.total_steps = steps + 60;
  settings.learning_rate = 1e-4;
  Optimizer eager(eager_model, settings), queued(queued_model, settings);
  std::vector<StepResult> expected, got;
  for (int64_t s = 0; s < steps; ++s)
    expected.push_back(eager.step(tiny_batch(2, 5, static_cast<uint32_t>(s))));
  for (int64_t s = 0; s < steps; ++s) {
    queued.queue_step(tiny_batch(2, 5, static_cast<uint32_t>(s)));
    if (s == 99) {  // the next collection starts at ring slot 100 and wraps past its end
      const std::vector<StepResult> part = queued.collect();
      got.insert(got.end(), part.begin(), part.end());
    }
  }
  const std::vector<StepResult> rest = queued.collect();
  got.insert(got.end(), rest.begin(), rest.end());
  expect_same_results(got, expected);
  expect_same_parameters(queued_model, eager_model);
}

TEST(TrainOptimizer, QueuedNonFiniteLossNamesItsStepAndUpdatesNothingFromThere) {
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification model(config, 3);
  Optimizer optimizer(model, tiny_settings());
  optimizer.queue_step(tiny_batch(4, 9, 0));
  Tensor w = model.parameters().at("classifier.weight");
  w.data<float>()[0] = std::nanf("");  // the loss of every later step is NaN
  const auto before = parameter_values(model);
  optimizer.queue_step(tiny_batch(4, 9, 1));
  optimizer.queue_step(tiny_batch(4, 9, 2));
  try {
    optimizer.collect();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NUMERIC);
    EXPECT_NE(std::string(e.what()).find("training step 1:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("the loss is not finite"), std::string::npos) << e.what();
  }
  EXPECT_EQ(optimizer.steps_done(), 1);
  EXPECT_EQ(optimizer.updates_done(), 1);
  const auto after = parameter_values(model);
  for (const auto& [name, values] : before) {
    EXPECT_EQ(std::memcmp(values.data(), after.at(name).data(), values.size() * sizeof(float)), 0)
        << name << " moved on or after the failed step";
  }
  // The step before the failure was collected and stays available.
  const std::vector<StepResult> first = optimizer.collect();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].step, 0);
}

TEST(TrainOptimizer, DecideStepFollowsTheHostScheduleAndAdamWRoundings) {
  // decide_step's learning rate is linear_warmup_decay_lr's bits at every update, and its f32 AdamW scalars
  // are adamw_cpu.cc's roundings (the CUDA kernel runs the same body).
  const int64_t total = 37, warmup = 5;
  const double peak = 3e-5, beta1 = 0.9, beta2 = 0.999, wd = 0.01;
  std::vector<double> tables(2 * (total + 1));
  for (int64_t s = 0; s <= total; ++s) {
    tables[s] = 1.0 - std::pow(beta1, static_cast<double>(s));
    tables[total + 1 + s] = 1.0 - std::pow(beta2, static_cast<double>(s));
  }
  const ops::OptimizerStepConstants constants{.peak_learning_rate = peak,
                                              .warmup_steps = warmup,
                                              .total_steps = total,
                                              .beta1 = beta1,
                                              .beta2 = beta2,
                                              .eps = 1e-8,
                                              .weight_decay = wd,
                                              .loss_scaling = 0,
                                              .growth = 2,
                                              .backoff = 0.5,
                                              .growth_interval = 2000,
                                              .bias_correction1 = tables.data(),
                                              .bias_correction2 = tables.data() + total + 1};
  ops::OptimizerStepState state{};
  state.loss_scale = 1;
  state.failed_step = -1;
  for (int64_t u = 0; u < total; ++u) {
    state.loss = 0.5;
    state.grad_norm = 1.0;
    ops::StepRecord ring[3] = {};  // the record of step u goes to slot u % 3, and the step advances
    state.step = u;
    ops::decide_step(cpu_context(), &state, ring, 3, constants);
    const ops::StepRecord& record = ring[u % 3];
    EXPECT_EQ(record.step, u);
    EXPECT_EQ(state.step, u + 1);
    const double lr = linear_warmup_decay_lr(peak, u, warmup, total);
    EXPECT_EQ(record.learning_rate, lr) << "update " << u;
    EXPECT_EQ(state.adamw.skip, 0);
    EXPECT_EQ(state.adamw.step, u + 1);
    EXPECT_EQ(state.adamw.decay, static_cast<float>(1.0 - lr * wd)) << "update " << u;
    EXPECT_EQ(state.adamw.step_size,
              static_cast<float>(lr / (1.0 - std::pow(beta1, static_cast<double>(u + 1)))))
        << "update " << u;
    EXPECT_EQ(state.adamw.bias_correction2_sqrt,
              static_cast<float>(std::sqrt(1.0 - std::pow(beta2, static_cast<double>(u + 1)))))
        << "update " << u;
    EXPECT_EQ(state.updates_done, u + 1);
  }
  // A non-finite norm without loss scaling fails the step and holds every later one.
  state.grad_norm = std::numeric_limits<double>::infinity();
  ops::StepRecord failed{};
  state.step = 40;
  ops::decide_step(cpu_context(), &state, &failed, 1, constants);
  EXPECT_EQ(failed.error, ops::StepError::NORM_NOT_FINITE);
  EXPECT_EQ(state.failed_step, 40);
  EXPECT_EQ(state.adamw.skip, 1);
  state.grad_norm = 1.0;
  ops::StepRecord held{};
  ops::decide_step(cpu_context(), &state, &held, 1, constants);
  EXPECT_EQ(held.step, 41);
  EXPECT_EQ(held.error, ops::StepError::AFTER_FAILURE);
  EXPECT_EQ(state.adamw.skip, 1);
  EXPECT_EQ(state.updates_done, total);
}

TEST(TrainOptimizer, BadSettingsAreRefused) {
  const BertConfig config = BertConfig::load(kTiny / "config.json");
  BertForSequenceClassification model(config, 3);
  OptimizerSettings s = tiny_settings();
  s.total_steps = 0;
  EXPECT_THROW(Optimizer(model, s), Error);
  s = tiny_settings();
  s.warmup_steps = 7;
  EXPECT_THROW(Optimizer(model, s), Error);
  s = tiny_settings();
  s.total_steps = 1;
  s.warmup_steps = 0;
  Optimizer optimizer(model, s);
  optimizer.step(tiny_batch(2, 5, 0));
  try {
    optimizer.step(tiny_batch(2, 5, 0));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("scheduled steps"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
