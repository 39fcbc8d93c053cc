// cross_entropy_forward/backward (f32 Tensor API): hand-computed losses, saved probs, the gradient
// (probs - onehot) / B, f32 against the double kernel, and argument errors (shapes, labels out of range).
#include "ops/cross_entropy.h"
#include "ops/cross_entropy_cpu.h"

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kF32{1e-5, 1e-6};

TEST(CrossEntropy, HandComputedLoss) {
  // Logits [0, 0] with label 0 (loss ln 2) and [0, ln 3] with label 1 (probs 1/4, 3/4, loss ln 4/3).
  Tensor probs = Tensor::empty(DType::F32, {2, 2});
  const double loss = ops::cross_entropy_forward(
      cpu_context(), probs, f32_tensor({2, 2}, {0, 0, 0, std::log(3.0)}), i32_tensor({2}, {0, 1}));
  EXPECT_NEAR(loss, (std::log(2.0) + std::log(4.0 / 3.0)) / 2, 1e-7);
  EXPECT_TRUE(all_close(probs, {0.5, 0.5, 0.25, 0.75}, kF32));
  Tensor dlogits = Tensor::empty(DType::F32, {2, 2});
  ops::cross_entropy_backward(cpu_context(), dlogits, probs, i32_tensor({2}, {0, 1}));
  EXPECT_TRUE(all_close(dlogits, {-0.25, 0.25, 0.125, -0.125}, kF32));
}

TEST(CrossEntropy, LargeLogitsStayFinite) {
  // log(e + e^2 + e^3) - 3, shifted by 1000: a naive exp would overflow.
  Tensor probs = Tensor::empty(DType::F32, {1, 3});
  const double loss = ops::cross_entropy_forward(cpu_context(), probs, f32_tensor({1, 3}, {1001, 1002, 1003}),
                                                 i32_tensor({1}, {2}));
  EXPECT_NEAR(loss, 0.40760596444438013, 1e-6);
}

TEST(CrossEntropy, F32MatchesDoubleKernel) {
  const int64_t B = 5, NL = 3;
  std::mt19937 rng(71);
  const std::vector<double> logits = round_to_float(random_vector(rng, B * NL, -4, 4));
  const std::vector<int32_t> labels = {0, 2, 1, 1, 0};
  Tensor probs = Tensor::empty(DType::F32, {B, NL}), dlogits = Tensor::empty(DType::F32, {B, NL});
  const double loss =
      ops::cross_entropy_forward(cpu_context(), probs, f32_tensor({B, NL}, logits), i32_tensor({B}, labels));
  ops::cross_entropy_backward(cpu_context(), dlogits, probs, i32_tensor({B}, labels), 2.0);
  std::vector<double> ref_probs(B * NL), ref_dlogits(B * NL);
  const double ref_loss = cpu::cross_entropy_forward(ref_probs.data(), logits.data(), labels.data(), B, NL);
  cpu::cross_entropy_backward(ref_dlogits.data(), ref_probs.data(), labels.data(), 2.0, B, NL);
  EXPECT_NEAR(loss, ref_loss, 1e-5 * std::abs(ref_loss));
  EXPECT_TRUE(all_close(probs, ref_probs, kF32));
  EXPECT_TRUE(all_close(dlogits, ref_dlogits, kF32));
}

TEST(CrossEntropy, ArgumentErrorsNameOpAndTensor) {
  Tensor logits = Tensor::zeros(DType::F32, {2, 3}), probs = Tensor::empty(DType::F32, {2, 3});
  expect_error(
      [&] {
        ops::cross_entropy_forward(cpu_context(), probs, logits, i32_tensor({2}, {0, 5}));
      },
      ErrorCode::INVALID_ARGUMENT, {"cross_entropy_forward", "labels[1] = 5", "[0, 3)"});
  expect_error(
      [&] {
        ops::cross_entropy_forward(cpu_context(), probs, logits, i32_tensor({2}, {-100, 0}));
      },
      ErrorCode::INVALID_ARGUMENT, {"cross_entropy_forward", "labels[0] = -100"});
  expect_error(
      [&] {
        ops::cross_entropy_forward(cpu_context(), probs, logits, i32_tensor({3}, {0, 0, 0}));
      },
      ErrorCode::INVALID_ARGUMENT, {"cross_entropy_forward", "labels", "[3]", "[2]"});
  Tensor bad_probs = Tensor::empty(DType::F32, {3, 2});
  expect_error(
      [&] {
        ops::cross_entropy_forward(cpu_context(), bad_probs, logits, i32_tensor({2}, {0, 0}));
      },
      ErrorCode::INVALID_ARGUMENT, {"cross_entropy_forward", "probs", "[3, 2]"});
  Tensor dlogits = Tensor::empty(DType::F32, {2, 2});
  expect_error(
      [&] {
        ops::cross_entropy_backward(cpu_context(), dlogits, probs, i32_tensor({2}, {0, 0}));
      },
      ErrorCode::INVALID_ARGUMENT, {"cross_entropy_backward", "dlogits", "[2, 2]"});
}

}  // namespace
}  // namespace nlpf::test
