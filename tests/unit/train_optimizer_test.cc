// Optimizer: decay selection by name, bit-identical runs from the same seed (dropout on), a non-finite
// loss refused with the step named, argument checks, and dynamic loss scaling (fp16's): exact when nothing
// overflows (power-of-two scales), an overflowing step skipped with the scale backed off and the schedule
// held.
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
