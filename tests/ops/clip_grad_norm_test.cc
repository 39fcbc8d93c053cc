// clip_grad_norm (f32 Tensor API): the total L2 norm over several tensors, torch's scale
// max_norm / (norm + 1e-6) when it is below 1, untouched gradients otherwise or when the norm is not
// finite, and argument errors.
#include "ops/clip_grad_norm.h"
#include "ops/clip_grad_norm_cpu.h"

#include <algorithm>
#include <limits>

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

TEST(ClipGradNorm, ScalesWhenAboveMaxNorm) {
  // Norm of (3, 4, 12) = 13.
  std::vector<Tensor> grads = {f32_tensor({2}, {3, 4}), f32_tensor({1, 1}, {12})};
  const double norm = ops::clip_grad_norm(cpu_context(), grads, 1.0);
  EXPECT_NEAR(norm, 13.0, 1e-6);
  const double s = 1.0 / (13.0 + 1e-6);
  EXPECT_TRUE(all_close(grads[0], {3 * s, 4 * s}, Tolerance{1e-6, 0}));
  EXPECT_TRUE(all_close(grads[1], {12 * s}, Tolerance{1e-6, 0}));
}

TEST(ClipGradNorm, ContextMemoryFormWritesNormAndFactorAndScalesOnlyInPlace) {
  // The form a training step uses (scalars in context memory): norm and factor written, the gradients
  // multiplied by the factor rounded to f32 (IN_PLACE) or left for their reader (BY_READER); loss scale 4.
  const double loss_scale = 4.0;
  for (const ops::ClipScaling scaling : {ops::ClipScaling::IN_PLACE, ops::ClipScaling::BY_READER}) {
    std::vector<Tensor> grads = {f32_tensor({2}, {12, 16}), f32_tensor({1, 1}, {48})};  // 4 x (3, 4, 12)
    double norm = 0, factor = 0;
    ops::clip_grad_norm(cpu_context(), grads, 1.0, &loss_scale, &norm, &factor, scaling);
    EXPECT_NEAR(norm, 13.0, 1e-6);
    EXPECT_EQ(factor, std::min(1.0 / (13.0 + 1e-6), 1.0) * 0.25);
    const float f = scaling == ops::ClipScaling::IN_PLACE ? static_cast<float>(factor) : 1.0f;
    EXPECT_EQ(grads[0].data<float>()[0], 12.0f * f);
    EXPECT_EQ(grads[0].data<float>()[1], 16.0f * f);
    EXPECT_EQ(grads[1].data<float>()[0], 48.0f * f);
  }
}

TEST(ClipGradNorm, LeavesSmallGradientsUntouched) {
  std::vector<Tensor> grads = {f32_tensor({2}, {3, 4}), f32_tensor({1}, {12})};
  EXPECT_NEAR(ops::clip_grad_norm(cpu_context(), grads, 100.0), 13.0, 1e-6);
  EXPECT_TRUE(all_close(grads[0], {3, 4}, Tolerance{0, 0}));
  EXPECT_TRUE(all_close(grads[1], {12}, Tolerance{0, 0}));
}

TEST(ClipGradNorm, LargeTensorMatchesDoubleSum) {
  const int64_t N = 100003;  // several blocks of the deterministic reduction
  std::mt19937 rng(91);
  const std::vector<double> g = round_to_float(random_vector(rng, N));
  double sum = 0;
  for (double x : g) sum += x * x;
  std::vector<Tensor> grads = {f32_tensor({N}, g)};
  EXPECT_NEAR(ops::clip_grad_norm(cpu_context(), grads, 1.0), std::sqrt(sum), 1e-9 * std::sqrt(sum));
  EXPECT_NEAR(cpu::sum_squares(g.data(), N), sum, 1e-10 * sum);
}

TEST(ClipGradNorm, NonFiniteNormLeavesGradients) {
  std::vector<Tensor> grads = {f32_tensor({2}, {std::numeric_limits<double>::infinity(), 1})};
  EXPECT_TRUE(std::isinf(ops::clip_grad_norm(cpu_context(), grads, 1.0)));
  EXPECT_EQ(grads[0].data<float>()[1], 1.0f);
}

TEST(ClipGradNorm, ArgumentErrorsNameOpAndTensor) {
  std::vector<Tensor> grads = {Tensor::zeros(DType::F32, {2}), Tensor::zeros(DType::I32, {2})};
  expect_error([&] { ops::clip_grad_norm(cpu_context(), grads, 1.0); }, ErrorCode::INVALID_ARGUMENT,
               {"clip_grad_norm", "grads[1]", "i32"});
  expect_error([&] { ops::clip_grad_norm(cpu_context(), grads, 0.0); }, ErrorCode::INVALID_ARGUMENT,
               {"clip_grad_norm", "max_norm = 0"});
}

}  // namespace
}  // namespace nlpf::test
