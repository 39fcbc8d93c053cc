// Training on the GPU (BertForSequenceClassification moved to a CUDA context, every op's CUDA kernel) against
// the same model on the CPU: one TRAIN forward and backward (logits, loss, every parameter gradient, dropout
// on), and 20 optimizer steps (AdamW, clipping, warm-up) whose losses, gradient norms and final weights must
// agree (issue 12: within 1e-4 on every loss in fp32; TF32, bf16 and fp16 (loss-scaled) within 1e-2), and
// mixed precision against the CPU's own mixed-precision reference. Also
// the host-side validation of a batch bound for the GPU, where a kernel cannot throw. Queued steps (results
// collected in bulk, no wait per step) against eager ones and the CPU, GradScaler's rule on an fp16 overflow,
// and a non-finite loss among queued steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/device.h"
#include "core/error.h"
#include "model/bert_model.h"
#include "ops/op_test_util.h"
#include "train/lr_schedule.h"
#include "train/optimizer.h"
#include "unit/tiny_bert.h"

namespace nlpf {
namespace {

using test::tiny_batch;
using test::tiny_config;

// Odd sizes beyond the tiny model: C = 48 over NH = 3 heads (HS = 16), I = 70, T up to 37.
BertConfig odd_config() {
  BertConfig c = tiny_config(2);
  c.vocab_size = 53;
  c.hidden_size = 48;
  c.num_attention_heads = 3;
  c.intermediate_size = 70;
  c.max_position_embeddings = 40;
  c.type_vocab_size = 2;
  return c;
}

// A labelled batch of B rows padded to T, row lengths drawn in [1, T] (one row always full length).
Batch random_batch(std::mt19937& rng, const BertConfig& config, int64_t B, int64_t T) {
  Batch b;
  b.B = B;
  b.T = T;
  std::uniform_int_distribution<int32_t> id(1, static_cast<int32_t>(config.vocab_size) - 1);
  std::uniform_int_distribution<int64_t> length(1, T);
  std::uniform_int_distribution<int32_t> label(0, static_cast<int32_t>(config.num_labels()) - 1);
  for (int64_t r = 0; r < B; ++r) {
    const int64_t n = r == 0 ? T : length(rng);
    for (int64_t t = 0; t < T; ++t) {
      b.input_ids.push_back(t < n ? id(rng) : 0);
      b.token_type_ids.push_back(t < n && t > n / 2 ? 1 : 0);
      b.attention_mask.push_back(t < n ? 1 : 0);
    }
    b.labels.push_back(label(rng));
  }
  return b;
}

bool is_key_bias(const std::string& name) {
  return name.ends_with("attention.self.key.bias");
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

class BertTrainingCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
    if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
    gpu_ = make_execution_context(Device{DeviceType::CUDA, 0});
  }
  // Every gradient of the GPU model against the CPU model's, relative to the tensor's largest entry. The
  // key biases' gradients are 0 in exact arithmetic (a key bias adds the same q . b_k to every score of a
  // query's row, which the softmax ignores): both devices hold rounding noise there, bounded by the scale of
  // the query biases' gradients (the size of the terms that cancel).
  void expect_same_gradients(const BertForSequenceClassification& cpu,
                             const BertForSequenceClassification& gpu, double tol) {
    for (const auto& [name, ref] : cpu.gradients()) {
      const std::vector<double> r = test::to_double(ref);
      const std::vector<double> got = test::to_double(to_host(*gpu_, gpu.gradients().at(name)));
      if (is_key_bias(name)) {
        std::string query = name;
        query.replace(query.find("key"), 3, "query");
        const double noise_bound = tol * max_abs(test::to_double(cpu.gradients().at(query)));
        EXPECT_LE(max_abs(got), noise_bound) << name;
        EXPECT_LE(max_abs(r), noise_bound) << name;
        continue;
      }
      EXPECT_TRUE(test::all_close(got, r, test::Tolerance{tol, tol * std::max(max_abs(r), 1e-6)})) << name;
    }
  }
  std::unique_ptr<ExecutionContext> gpu_;
};

TEST_F(BertTrainingCuda, ForwardBackwardEqualTheCpuWithDropout) {
  for (const BertConfig& config : {tiny_config(2), odd_config()}) {
    std::mt19937 rng(7);
    const Batch batch = config.hidden_size == 16 ? tiny_batch() : random_batch(rng, config, 5, 37);
    BertForSequenceClassification cpu(config, 3), gpu(config, 3);
    const DropoutSettings dropout{0.1, 0.1, 0.1, 1234};
    cpu.set_dropout(dropout);
    gpu.set_dropout(dropout);
    gpu.to_context(*gpu_);
    EXPECT_EQ(gpu.parameters().begin()->second.device().type, DeviceType::CUDA);
    for (uint64_t step : {0u, 5u}) {
      cpu.zero_grad();
      gpu.zero_grad();
      const ModelOutput ref = cpu.forward(batch, ForwardMode::TRAIN, step);
      const ModelOutput out = gpu.forward(batch, ForwardMode::TRAIN, step);
      const std::vector<double> ref_logits = test::to_double(ref.logits);
      EXPECT_TRUE(test::all_close(to_host(*gpu_, out.logits), ref_logits,
                                  test::Tolerance{1e-5, 1e-5 * max_abs(ref_logits)}))
          << "C = " << config.hidden_size << ", step " << step;
      ASSERT_TRUE(ref.loss && out.loss);
      EXPECT_NEAR(*out.loss, *ref.loss, 1e-5 * std::abs(*ref.loss)) << "step " << step;
      cpu.backward();
      gpu.backward();
      expect_same_gradients(cpu, gpu, 1e-4);  // sums over B*T rows in another order, then through 2 layers
    }
    // EVAL after TRAIN on the device: no dropout, same logits as the CPU.
    const ModelOutput ref = cpu.forward(batch, ForwardMode::EVAL);
    const ModelOutput out = gpu.forward(batch, ForwardMode::EVAL);
    const std::vector<double> ref_logits = test::to_double(ref.logits);
    EXPECT_TRUE(test::all_close(to_host(*gpu_, out.logits), ref_logits,
                                test::Tolerance{1e-5, 1e-5 * max_abs(ref_logits)}));
  }
}

// Mixed precision (bert_model.h: Memory) on both devices: the CPU runs the same wiring (16-bit copies of the
// GEMM operands, rounded as the kernels round them) as the reference. One TRAIN forward and backward with
// dropout: logits, loss and gradients within a bound of about two 16-bit ulps of the largest entry: 1e-2 in
// bf16 (2^-8 a ulp; the H200's gradients were up to 5.7e-3 apart on 2026-11-30, in the embeddings and the
// first layer, where the rounding differences of the copies downstream add up), 2e-3 in fp16 (2^-11; within
// it on the H200). A GEMM that read a stale or wrong operand moves results by their own size.
TEST_F(BertTrainingCuda, MixedPrecisionForwardBackwardFollowTheCpuMixed) {
  const test::CpuMathModeGuard guard;
  for (const auto& [mode, tol] : {std::pair{MathMode::BF16, 1e-2}, std::pair{MathMode::FP16, 2e-3}}) {
    SCOPED_TRACE(mode == MathMode::BF16 ? "bf16" : "fp16");
    const BertConfig config = odd_config();
    std::mt19937 rng(8);
    const Batch batch = random_batch(rng, config, 5, 37);
    BertForSequenceClassification cpu(config, 3), gpu(config, 3);
    const DropoutSettings dropout{0.1, 0.1, 0.1, 1234};
    cpu.set_dropout(dropout);
    gpu.set_dropout(dropout);
    gpu_->set_math_mode(mode);
    cpu_context().set_math_mode(mode);
    gpu.to_context(*gpu_);
    const ModelOutput ref = cpu.forward(batch, ForwardMode::TRAIN, 3);
    const ModelOutput out = gpu.forward(batch, ForwardMode::TRAIN, 3);
    const std::vector<double> ref_logits = test::to_double(ref.logits);
    EXPECT_TRUE(test::all_close(to_host(*gpu_, out.logits), ref_logits,
                                test::Tolerance{tol, tol * max_abs(ref_logits)}));
    ASSERT_TRUE(ref.loss && out.loss);
    EXPECT_NEAR(*out.loss, *ref.loss, tol * std::abs(*ref.loss));
    cpu.backward();
    gpu.backward();
    expect_same_gradients(cpu, gpu, tol);
  }
  gpu_->set_math_mode(MathMode::IEEE_FP32);
}

// 20 AdamW steps with dropout, warm-up and clipping on batches of varying length: the GPU follows the CPU.
// loss_scale > 0: the GPU side trains with loss scaling from that scale (fp16), the CPU side without. The
// gradient norm within weight_tol: with 16-bit GEMM operands it sums the squares of gradients made from
// 16-bit activations and dy (bf16's 8 significant bits: ~1.5% apart on the H200, 2026-11-30), as the weights
// are.
void run_twenty_steps(ExecutionContext& gpu_ctx, MathMode math, double loss_tol, double weight_tol,
                      double loss_scale = 0) {
  const BertConfig config = odd_config();
  BertForSequenceClassification cpu(config, 21), gpu(config, 21);
  const DropoutSettings dropout{0.1, 0.1, 0.1, 42};
  cpu.set_dropout(dropout);
  gpu.set_dropout(dropout);
  gpu_ctx.set_math_mode(math);
  gpu.to_context(gpu_ctx);
  OptimizerSettings settings;
  settings.learning_rate = 1e-3;  // large enough that 20 steps move the weights visibly
  settings.total_steps = 20;
  settings.warmup_steps = 2;
  settings.max_grad_norm = 1.0;
  Optimizer cpu_opt(cpu, settings);
  if (loss_scale > 0) settings.loss_scaling = {.enabled = true, .initial_scale = loss_scale};
  Optimizer gpu_opt(gpu, settings);
  std::mt19937 rng(99);
  for (int step = 0; step < 20; ++step) {
    const Batch batch = random_batch(rng, config, 6, 9 + step % 5 * 7);
    const StepResult r = cpu_opt.step(batch);
    const StepResult g = gpu_opt.step(batch);
    EXPECT_FALSE(g.skipped) << "step " << step;
    EXPECT_NEAR(g.loss, r.loss, loss_tol) << "step " << step;
    EXPECT_NEAR(g.grad_norm, r.grad_norm, weight_tol * std::max(1.0, r.grad_norm)) << "step " << step;
    EXPECT_EQ(g.learning_rate, r.learning_rate);
  }
  for (const auto& [name, ref] : cpu.parameters()) {
    // A key bias only ever receives rounding noise (its gradient is 0 in exact arithmetic, see
    // expect_same_gradients), which AdamW normalises into steps of size lr: on both devices it walks at
    // random.
    if (is_key_bias(name)) continue;
    const std::vector<double> r = test::to_double(ref);
    EXPECT_TRUE(test::all_close(to_host(gpu_ctx, gpu.parameters().at(name)), r,
                                test::Tolerance{weight_tol, weight_tol * std::max(max_abs(r), 1e-6)}))
        << name;
  }
}

TEST_F(BertTrainingCuda, TwentyStepsFp32MatchTheCpu) {
  run_twenty_steps(*gpu_, MathMode::IEEE_FP32, 1e-4, 1e-4);
}

TEST_F(BertTrainingCuda, TwentyStepsTf32WithinOnePercent) {
  // TF32 rounds GEMM inputs to 10 mantissa bits (relative error ~5e-4 per product): 1e-2 as issue 12 asks.
  run_twenty_steps(*gpu_, MathMode::TF32, 1e-2, 1e-2);
}

TEST_F(BertTrainingCuda, TwentyStepsBf16WithinOnePercent) {
  // bf16 GEMM inputs (8 significant bits, relative error ~4e-3 per product; f32 everywhere else): the losses
  // within 1e-2 of fp32's as issue 12 asks; the weights within 4e-2 (STYLE's bf16 tolerance: AdamW normalises
  // the gradients' rounding noise into lr-sized steps on small-gradient weights).
  run_twenty_steps(*gpu_, MathMode::BF16, 1e-2, 4e-2);
}

TEST_F(BertTrainingCuda, TwentyStepsFp16WithLossScalingWithinOnePercent) {
  // fp16 GEMM inputs (11 significant bits) with loss scaling from 2^10 (no step of this small model overflows
  // there, so the GPU makes the CPU's updates): losses within 1e-2 of fp32's, weights within 4e-2 as bf16's.
  run_twenty_steps(*gpu_, MathMode::FP16, 1e-2, 4e-2, 1024.0);
}

// The GPU models' parameters on the host, by name.
std::map<std::string, std::vector<double>> gpu_parameters(ExecutionContext& ctx,
                                                          const BertForSequenceClassification& model) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [name, p] : model.parameters()) out[name] = test::to_double(to_host(ctx, p));
  return out;
}

// Steps queued on the GPU and collected once after 20 (no wait for the host in between: loss, norm, scale and
// the schedule stay on the device) give the eager GPU steps' results, and follow the CPU within
// run_twenty_steps' tolerances. capture: the queued steps of each of the 5 batch shapes are captured as a
// CUDA graph at the shape's second step and replayed from then on (issue 12: the captured step equals the
// eager step), against steps that never are. norm_tol: the gradient norm's bound against the CPU (as
// run_twenty_steps' weight_tol).
void run_twenty_queued_steps(ExecutionContext& gpu_ctx, MathMode math, double loss_tol, double norm_tol,
                             bool capture) {
  const BertConfig config = odd_config();
  BertForSequenceClassification cpu(config, 23), eager(config, 23), queued(config, 23);
  const DropoutSettings dropout{0.1, 0.1, 0.1, 42};
  for (BertForSequenceClassification* m : {&cpu, &eager, &queued}) m->set_dropout(dropout);
  gpu_ctx.set_math_mode(math);
  eager.to_context(gpu_ctx);
  queued.to_context(gpu_ctx);
  OptimizerSettings settings;
  settings.learning_rate = 1e-3;
  settings.total_steps = 20;
  settings.warmup_steps = 2;
  settings.capture_steps = false;
  Optimizer cpu_opt(cpu, settings), eager_opt(eager, settings);
  settings.capture_steps = capture;
  Optimizer queued_opt(queued, settings);
  std::mt19937 rng(77);
  std::vector<StepResult> expected_cpu, expected_gpu;
  for (int step = 0; step < 20; ++step) {
    const Batch batch = random_batch(rng, config, 6, 9 + step % 5 * 7);
    expected_cpu.push_back(cpu_opt.step(batch));
    expected_gpu.push_back(eager_opt.step(batch));
    queued_opt.queue_step(batch);
  }
  EXPECT_EQ(queued_opt.pending_steps(), 20);
  const std::vector<StepResult> got = queued_opt.collect();
  ASSERT_EQ(got.size(), 20u);
  for (int step = 0; step < 20; ++step) {
    const StepResult &g = got[step], &e = expected_gpu[step], &r = expected_cpu[step];
    EXPECT_EQ(g.step, step);
    EXPECT_FALSE(g.skipped) << "step " << step;
    EXPECT_EQ(g.learning_rate, r.learning_rate) << "step " << step;  // the device schedule is the host's bits
    EXPECT_EQ(g.loss_scale, 1.0) << "step " << step;
    // The same kernels on the same inputs: equal unless a kernel's summation order varies between runs.
    EXPECT_NEAR(g.loss, e.loss, 1e-5 * std::max(1.0, std::abs(e.loss))) << "step " << step;
    EXPECT_NEAR(g.grad_norm, e.grad_norm, 1e-5 * std::max(1.0, e.grad_norm)) << "step " << step;
    EXPECT_NEAR(g.loss, r.loss, loss_tol) << "step " << step;
    EXPECT_NEAR(g.grad_norm, r.grad_norm, norm_tol * std::max(1.0, r.grad_norm)) << "step " << step;
  }
  EXPECT_EQ(queued_opt.updates_done(), 20);
  EXPECT_EQ(queued_opt.captured_shapes(), capture ? 5 : 0);
  EXPECT_EQ(queued_opt.replayed_steps(), capture ? 15 : 0);
  EXPECT_EQ(eager_opt.replayed_steps(), 0);
  const auto queued_params = gpu_parameters(gpu_ctx, queued), eager_params = gpu_parameters(gpu_ctx, eager);
  for (const auto& [name, values] : eager_params) {
    if (is_key_bias(name)) continue;  // rounding noise walks at random (run_twenty_steps)
    EXPECT_TRUE(test::all_close(queued_params.at(name), values,
                                test::Tolerance{1e-5, 1e-5 * std::max(max_abs(values), 1e-6)}))
        << name;
  }
}

TEST_F(BertTrainingCuda, TwentyQueuedStepsFp32MatchEagerStepsAndTheCpu) {
  run_twenty_queued_steps(*gpu_, MathMode::IEEE_FP32, 1e-4, 1e-4, /*capture=*/false);
}

TEST_F(BertTrainingCuda, TwentyCapturedStepsFp32MatchEagerStepsAndTheCpu) {
  run_twenty_queued_steps(*gpu_, MathMode::IEEE_FP32, 1e-4, 1e-4, /*capture=*/true);
}

TEST_F(BertTrainingCuda, TwentyCapturedStepsBf16WithinOnePercent) {
  // bf16's tolerances, as TwentyStepsBf16WithinOnePercent's.
  run_twenty_queued_steps(*gpu_, MathMode::BF16, 1e-2, 4e-2, /*capture=*/true);
}

TEST_F(BertTrainingCuda, QueuedFp16OverflowSkipsByTheHostRule) {
  // nlpf's fp16 keeps f32 storage (fp16 GEMM inputs only), so a scale that overflows fp16 does not overflow
  // here: on the H200 a scale of 2^40 skipped no step (2026-11-30). 2^160 overflows f32 in the loss gradient
  // itself (|dlogit| ~ 2^160 * 0.5 / B): the first step is skipped for certain and the scale backed off by
  // 2^-32 until updates begin, then grows after every 3 updates. The steps are
  // queued and collected at the end; GradScaler's rule, replayed on the host from each step's norm, must give
  // every step's skip, scale and learning rate, and a skipped step must leave every parameter as it was.
  const BertConfig config = odd_config();
  BertForSequenceClassification gpu(config, 24);
  gpu.set_dropout(DropoutSettings{0.1, 0.1, 0.1, 42});
  gpu_->set_math_mode(MathMode::FP16);
  gpu.to_context(*gpu_);
  OptimizerSettings settings;
  settings.learning_rate = 1e-3;
  settings.total_steps = 16;
  settings.warmup_steps = 2;
  settings.loss_scaling = {.enabled = true,
                           .initial_scale = std::pow(2.0, 160),
                           .backoff = std::pow(2.0, -32),
                           .growth_interval = 3};
  Optimizer optimizer(gpu, settings);
  std::mt19937 rng(55);
  std::vector<std::map<std::string, std::vector<double>>> params{gpu_parameters(*gpu_, gpu)};
  for (int step = 0; step < 16; ++step) {
    optimizer.queue_step(random_batch(rng, config, 6, 9 + step % 5 * 7));
    params.push_back(gpu_parameters(*gpu_, gpu));  // waits for the parameters, not for the step's results
  }
  const std::vector<StepResult> got = optimizer.collect();
  ASSERT_EQ(got.size(), 16u);
  double scale = settings.loss_scaling.initial_scale;
  int64_t updates = 0, since_change = 0, skipped = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    const StepResult& r = got[k];
    EXPECT_EQ(r.loss_scale, scale) << "step " << k;
    EXPECT_EQ(r.learning_rate, linear_warmup_decay_lr(settings.learning_rate, updates, settings.warmup_steps,
                                                      settings.total_steps))
        << "step " << k;
    EXPECT_TRUE(std::isfinite(r.loss)) << "step " << k;
    EXPECT_EQ(r.skipped, !std::isfinite(r.grad_norm)) << "step " << k;
    if (r.skipped) {
      ++skipped;
      scale *= settings.loss_scaling.backoff;
      since_change = 0;
      for (const auto& [name, before] : params[k]) {
        EXPECT_EQ(before, params[k + 1].at(name)) << name << " moved on skipped step " << k;
      }
    } else {
      ++updates;
      if (++since_change == settings.loss_scaling.growth_interval) {
        scale *= settings.loss_scaling.growth;
        since_change = 0;
      }
    }
  }
  EXPECT_GT(skipped, 0) << "no step overflowed: the test does not cover skipping";
  EXPECT_GE(updates, 3) << "too few updates: the test does not cover growth";
  EXPECT_EQ(optimizer.updates_done(), updates);
  EXPECT_EQ(optimizer.loss_scale(), scale);
}

TEST_F(BertTrainingCuda, QueuedNonFiniteLossNamesItsStepAndUpdatesNothingFromThere) {
  const BertConfig config = odd_config();
  BertForSequenceClassification gpu(config, 25);
  gpu.to_context(*gpu_);
  OptimizerSettings settings;
  settings.total_steps = 5;
  Optimizer optimizer(gpu, settings);
  std::mt19937 rng(5);
  optimizer.queue_step(random_batch(rng, config, 4, 11));
  Tensor w = gpu.parameters().at("classifier.weight");
  Tensor host = to_host(*gpu_, w);
  host.data<float>()[0] = std::nanf("");
  copy_tensor(*gpu_, w, host);  // every later loss is NaN
  const auto before = gpu_parameters(*gpu_, gpu);
  optimizer.queue_step(random_batch(rng, config, 4, 11));
  optimizer.queue_step(random_batch(rng, config, 4, 11));
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
  const auto after = gpu_parameters(*gpu_, gpu);
  for (const auto& [name, values] : before) {
    // NaN != NaN: compare the bits.
    ASSERT_EQ(values.size(), after.at(name).size());
    EXPECT_EQ(std::memcmp(values.data(), after.at(name).data(), values.size() * sizeof(double)), 0)
        << name << " moved on or after the failed step";
  }
}

TEST_F(BertTrainingCuda, OutOfRangeIdsAndLabelsRefusedBeforeUpload) {
  BertForSequenceClassification gpu(tiny_config(), 5);
  gpu.to_context(*gpu_);
  Batch batch = tiny_batch();
  batch.input_ids[4] = 40;  // vocab_size 40
  try {
    gpu.forward(batch, ForwardMode::TRAIN, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("input_ids[4] = 40"), std::string::npos) << e.what();
  }
  batch = tiny_batch();
  batch.labels[2] = 2;
  try {
    gpu.forward(batch, ForwardMode::TRAIN, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("labels[2] = 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
