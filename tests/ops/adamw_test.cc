// adamw_update (f32 Tensor API and double kernel) against three steps worked out by hand in double from
// torch.optim.AdamW's formula (lr 0.1, betas 0.9/0.999, eps 1e-8, weight decay 0.01), the per-parameter
// weight-decay switch, and argument errors.
#include "ops/adamw.h"

#include <cmath>
#include <random>

#include "ops/adamw_cpu.h"
#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

const ops::AdamWConfig kConfig{0.1, 0.9, 0.999, 1e-8, 0.01};
const std::vector<std::vector<double>> kGrads = {{0.5, -0.3}, {-0.3, 0.1}, {0.2, 0.4}};
// Step 1 by hand: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2, so p = 0.999 p0 - 0.1 g / (|g| + 1e-8):
// 0.999 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.899000002. Steps 2-3 follow the same formula in double.
const std::vector<std::vector<double>> kParams = {{0.899000002, -1.8980000033333333},
                                                  {0.8789511989397751, -1.8560801479247475},
                                                  {0.8433294795899422, -1.8851799428181453}};
const std::vector<double> kM3 = {0.033499999999999995, 0.0247},
                          kV3 = {0.00037941025000000036, 0.00025981009000000026};

TEST(AdamW, DoubleKernelMatchesHandSteps) {
  std::vector<double> p = {1.0, -2.0}, m = {0, 0}, v = {0, 0};
  for (int step = 1; step <= 3; ++step) {
    cpu::adamw_update(p.data(), kGrads[step - 1].data(), m.data(), v.data(), 2, kConfig.lr, kConfig.beta1,
                      kConfig.beta2, kConfig.eps, kConfig.weight_decay, step);
    EXPECT_TRUE(all_close(p, kParams[step - 1], Tolerance{1e-13, 0})) << "step " << step;
  }
  EXPECT_TRUE(all_close(m, kM3, Tolerance{1e-13, 0}));
  EXPECT_TRUE(all_close(v, kV3, Tolerance{1e-13, 0}));
}

TEST(AdamW, F32MatchesHandSteps) {
  Tensor p = f32_tensor({2}, {1.0, -2.0}), m = Tensor::zeros(DType::F32, {2}),
         v = Tensor::zeros(DType::F32, {2});
  for (int step = 1; step <= 3; ++step) {
    ops::adamw_update(cpu_context(), p, f32_tensor({2}, kGrads[step - 1]), m, v, kConfig, step,
                      ops::WeightDecay::APPLY);
    EXPECT_TRUE(all_close(p, kParams[step - 1], Tolerance{1e-6, 0})) << "step " << step;
  }
  EXPECT_TRUE(all_close(m, kM3, Tolerance{1e-5, 0}));
  EXPECT_TRUE(all_close(v, kV3, Tolerance{1e-5, 0}));
}

TEST(AdamW, SkipMeansNoWeightDecay) {
  Tensor p = f32_tensor({2}, {1.0, -2.0}), m = Tensor::zeros(DType::F32, {2}),
         v = Tensor::zeros(DType::F32, {2});
  ops::adamw_update(cpu_context(), p, f32_tensor({2}, kGrads[0]), m, v, kConfig, 1, ops::WeightDecay::SKIP);
  // p0 - 0.1 sign(g) |g| / (|g| + 1e-8), without the factor 0.999.
  EXPECT_TRUE(
      all_close(p, {1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 * 0.3 / (0.3 + 1e-8)}, Tolerance{1e-7, 0}));
}

// This step's scalars as decide_step rounds them (ops/optimizer_step_impl.h) for update `step` at rate lr,
// with the gradients to be read times grad_scale.
ops::AdamWStepScalars step_scalars(const ops::AdamWConfig& config, double lr, int64_t step,
                                   float grad_scale) {
  ops::AdamWStepScalars s{};
  s.learning_rate = lr;
  s.step = step;
  s.skip = 0;
  s.decay = static_cast<float>(1.0 - lr * config.weight_decay);
  s.step_size = static_cast<float>(lr / (1.0 - std::pow(config.beta1, static_cast<double>(step))));
  s.bias_correction2_sqrt =
      static_cast<float>(std::sqrt(1.0 - std::pow(config.beta2, static_cast<double>(step))));
  s.grad_scale = grad_scale;
  return s;
}

TEST(AdamW, StepScalarsGradScaleIsTheUpdateOfTheScaledGradients) {
  // The step-scalar form multiplies each gradient by grad_scale as it reads it (clip_grad_norm's factor left
  // to its reader): the same bits as clipping the gradients in place and then updating; grad_scale 1 is the
  // host form.
  std::mt19937 rng(7);
  const int64_t N = 1001;
  for (const float grad_scale : {1.0f, 0.37f}) {
    const std::vector<double> grad = random_vector(rng, static_cast<size_t>(N), -2, 2),
                              param = random_vector(rng, static_cast<size_t>(N), -1, 1);
    std::vector<ops::AdamWParameter> read{{f32_tensor({N}, param), f32_tensor({N}, grad),
                                           Tensor::zeros(DType::F32, {N}), Tensor::zeros(DType::F32, {N})}};
    std::vector<ops::AdamWParameter> scaled{{f32_tensor({N}, param), f32_tensor({N}, grad),
                                             Tensor::zeros(DType::F32, {N}), Tensor::zeros(DType::F32, {N})}};
    for (int64_t i = 0; i < N; ++i) scaled[0].grad.data<float>()[i] *= grad_scale;
    for (int64_t step = 1; step <= 2; ++step) {
      const ops::AdamWStepScalars scalars =
          step_scalars(kConfig, 0.01 * static_cast<double>(step), step, grad_scale);
      ops::AdamWConfig host = kConfig;
      host.lr = scalars.learning_rate;
      ops::adamw_update(cpu_context(), read, kConfig, &scalars);
      ops::adamw_update(cpu_context(), scaled, host, step);
    }
    for (int64_t i = 0; i < N; ++i) {
      ASSERT_EQ(read[0].param.data<float>()[i], scaled[0].param.data<float>()[i]) << grad_scale << " " << i;
      ASSERT_EQ(read[0].v.data<float>()[i], scaled[0].v.data<float>()[i]) << grad_scale << " " << i;
    }
  }
}

TEST(AdamW, ArgumentErrorsNameOpAndTensor) {
  Tensor p = Tensor::zeros(DType::F32, {3}), g = Tensor::zeros(DType::F32, {3}),
         m = Tensor::zeros(DType::F32, {3});
  Tensor bad_v = Tensor::zeros(DType::F32, {2});
  expect_error([&] { ops::adamw_update(cpu_context(), p, g, m, bad_v, kConfig, 1, ops::WeightDecay::APPLY); },
               ErrorCode::INVALID_ARGUMENT, {"adamw_update", "v", "[2]", "[3]"});
  expect_error([&] { ops::adamw_update(cpu_context(), p, g, m, m, kConfig, 0, ops::WeightDecay::APPLY); },
               ErrorCode::INVALID_ARGUMENT, {"adamw_update", "step = 0"});
  ops::AdamWConfig bad = kConfig;
  bad.beta2 = 1.0;
  expect_error([&] { ops::adamw_update(cpu_context(), p, g, m, m, bad, 1, ops::WeightDecay::APPLY); },
               ErrorCode::INVALID_ARGUMENT, {"adamw_update", "betas"});
}

}  // namespace
}  // namespace nlpf::test
