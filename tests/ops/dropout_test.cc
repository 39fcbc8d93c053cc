// dropout_forward/backward and dropout_mask (f32 Tensor API): scaling by 1/(1-p), the Philox mask (its
// keep rate, determinism, the (seed, offset) stream layout of core/random.h) and argument errors.
#include "ops/dropout.h"

#include <random>

#include "core/random.h"
#include "ops/add.h"
#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kF32{1e-6, 0};

TEST(Dropout, ScalesKeptAndZeroesDropped) {
  Tensor x = f32_tensor({4}, {1, -2, 3, 4}), keep = f32_tensor({4}, {1, 0, 1, 0});
  Tensor out = Tensor::empty(DType::F32, {4}), dx = Tensor::empty(DType::F32, {4});
  ops::dropout_forward(cpu_context(), out, x, keep, 0.2);
  EXPECT_TRUE(all_close(out, {1.25, 0, 3.75, 0}, kF32));
  ops::dropout_backward(cpu_context(), dx, f32_tensor({4}, {0.8, 0.8, -1.6, 1}), keep, 0.2);
  EXPECT_TRUE(all_close(dx, {1, 0, -2, 0}, kF32));
}

TEST(DropoutMask, KeepRateAndDeterminism) {
  const int64_t N = 200003;
  const double p = 0.1;
  Tensor a = Tensor::empty(DType::F32, {N}), b = Tensor::empty(DType::F32, {N});
  ops::dropout_mask(cpu_context(), a, p, 1234, 0);
  ops::dropout_mask(cpu_context(), b, p, 1234, 0);
  double kept = 0;
  for (int64_t i = 0; i < N; ++i) {
    ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]) << i;
    ASSERT_TRUE(a.data<float>()[i] == 0.0f || a.data<float>()[i] == 1.0f) << i;
    kept += a.data<float>()[i];
  }
  // Binomial(N, 0.9): the standard deviation of the rate is 6.7e-4; 0.005 is 7 of them.
  EXPECT_NEAR(kept / N, 1 - p, 0.005);
  ops::dropout_mask(cpu_context(), b, p, 1235, 0);
  int64_t differ = 0;
  for (int64_t i = 0; i < N; ++i) differ += a.data<float>()[i] != b.data<float>()[i];
  EXPECT_GT(differ, N / 10) << "another seed must give another mask";
}

TEST(DropoutMask, FollowsThePhiloxStreamAtAnyOffset) {
  const int64_t N = 11;
  const double p = 0.5;
  for (uint64_t offset : std::vector<uint64_t>{0, 1, 5, 4000000001ull}) {
    Tensor keep = Tensor::empty(DType::F32, {N});
    ops::dropout_mask(cpu_context(), keep, p, 77, offset);
    for (int64_t i = 0; i < N; ++i) {
      const float expected = philox_uniform(77, offset + i) < 0.5f ? 1.0f : 0.0f;
      EXPECT_EQ(keep.data<float>()[i], expected) << "offset " << offset << " element " << i;
    }
  }
  Tensor all = Tensor::empty(DType::F32, {N});
  ops::dropout_mask(cpu_context(), all, 0.0, 77, 3);
  for (int64_t i = 0; i < N; ++i) EXPECT_EQ(all.data<float>()[i], 1.0f);
}

TEST(DropoutMask, StepFromContextMemoryMovesTheOffsetByStepTimesStride) {
  // The captured training step's form: offset + *step * stride, *step read when the mask is drawn.
  const int64_t N = 13;
  const uint64_t offset = 8, stride = uint64_t{1} << 42;  // the model's site offset and step stride
  for (const int64_t step : {int64_t{0}, int64_t{1}, int64_t{4194303}}) {
    Tensor via_step = Tensor::empty(DType::F32, {N}), direct = Tensor::empty(DType::F32, {N});
    ops::dropout_mask(cpu_context(), via_step, 0.3, 91, offset, &step, stride);
    ops::dropout_mask(cpu_context(), direct, 0.3, 91, offset + static_cast<uint64_t>(step) * stride);
    for (int64_t i = 0; i < N; ++i) {
      EXPECT_EQ(via_step.data<float>()[i], direct.data<float>()[i]) << "step " << step << " element " << i;
    }
  }
  const int64_t step = 2;
  Tensor keep = Tensor::empty(DType::F32, {N});
  expect_error([&] { ops::dropout_mask(cpu_context(), keep, 0.3, 91, 2, &step, stride); },
               ErrorCode::INVALID_ARGUMENT, {"dropout_mask", "multiple of 4"});
  expect_error([&] { ops::dropout_mask(cpu_context(), keep, 0.3, 91, 8, nullptr, stride); },
               ErrorCode::INVALID_ARGUMENT, {"dropout_mask", "null step"});
}

TEST(Dropout, DrawnMaskIsTheStoredMask) {
  // dropout_forward / dropout_backward with a DropoutDraw apply the mask dropout_mask writes for the same
  // (seed, offset[, step, stride]): the CPU reference of the CUDA kernels that never store it.
  std::mt19937 rng(4);
  const int64_t N = 1001;
  const Tensor x = f32_tensor({N}, random_vector(rng, static_cast<size_t>(N), -2, 2));
  const int64_t step = 5;
  struct Case {
    ops::DropoutDraw draw;
    uint64_t offset;  // the mask's offset
  };
  const uint64_t stride = uint64_t{1} << 42;
  for (const Case& c : {Case{{17, 3, nullptr, 0}, 3}, Case{{17, 8, &step, stride}, 8 + 5 * stride}}) {
    Tensor keep = Tensor::empty(DType::F32, {N}), expected = Tensor::empty(DType::F32, {N});
    ops::dropout_mask(cpu_context(), keep, 0.25, 17, c.offset);
    ops::dropout_forward(cpu_context(), expected, x, keep, 0.25);
    Tensor out = Tensor::empty(DType::F32, {N}), dx = Tensor::empty(DType::F32, {N});
    ops::dropout_forward(cpu_context(), out, x, 0.25, c.draw);
    ops::dropout_backward(cpu_context(), dx, x, 0.25, c.draw);
    for (int64_t i = 0; i < N; ++i) {
      ASSERT_EQ(out.data<float>()[i], expected.data<float>()[i]) << "offset " << c.offset << " element " << i;
      ASSERT_EQ(dx.data<float>()[i], expected.data<float>()[i]) << "offset " << c.offset << " element " << i;
    }
  }
  Tensor out = Tensor::empty(DType::F32, {N});
  expect_error(
      [&] {
        ops::dropout_forward(cpu_context(), out, x, 0.25, ops::DropoutDraw{1, 2, &step, stride});
      },
      ErrorCode::INVALID_ARGUMENT, {"dropout_forward", "multiple of 4"});
  expect_error([&] { ops::dropout_forward(cpu_context(), out, x, 1.0, ops::DropoutDraw{}); },
               ErrorCode::INVALID_ARGUMENT, {"dropout_forward", "p = 1"});
}

TEST(Dropout, DropoutAddIsDropoutThenAddInAnyAliasing) {
  // dropout_add_forward (the training forward's dropout and residual in one op) is dropout_forward then
  // add_forward, out of place and with out being x or the residual; a residual of another shape is named.
  std::mt19937 rng(5);
  const int64_t N = 1001, step = 3;
  const Tensor x = f32_tensor({N}, random_vector(rng, static_cast<size_t>(N), -2, 2));
  const Tensor residual = f32_tensor({N}, random_vector(rng, static_cast<size_t>(N), -2, 2));
  const ops::DropoutDraw draw{17, 8, &step, uint64_t{1} << 42};
  Tensor expected = Tensor::empty(DType::F32, {N});
  ops::dropout_forward(cpu_context(), expected, x, 0.25, draw);
  ops::add_forward(cpu_context(), expected, expected, residual);
  Tensor out = Tensor::empty(DType::F32, {N}), on_x = x.clone(), on_residual = residual.clone();
  ops::dropout_add_forward(cpu_context(), out, x, residual, 0.25, draw);
  ops::dropout_add_forward(cpu_context(), on_x, on_x, residual, 0.25, draw);
  ops::dropout_add_forward(cpu_context(), on_residual, x, on_residual, 0.25, draw);
  for (int64_t i = 0; i < N; ++i) {
    ASSERT_EQ(out.data<float>()[i], expected.data<float>()[i]) << "element " << i;
    ASSERT_EQ(on_x.data<float>()[i], expected.data<float>()[i]) << "element " << i;
    ASSERT_EQ(on_residual.data<float>()[i], expected.data<float>()[i]) << "element " << i;
  }
  const Tensor short_residual = Tensor::zeros(DType::F32, {N - 1});
  expect_error([&] { ops::dropout_add_forward(cpu_context(), out, x, short_residual, 0.25, draw); },
               ErrorCode::INVALID_ARGUMENT, {"dropout_add_forward", "residual"});
}

TEST(Dropout, ArgumentErrorsNameOpAndTensor) {
  Tensor x = Tensor::zeros(DType::F32, {3}), keep = Tensor::zeros(DType::F32, {4});
  Tensor out = Tensor::empty(DType::F32, {3});
  expect_error([&] { ops::dropout_forward(cpu_context(), out, x, keep, 0.1); }, ErrorCode::INVALID_ARGUMENT,
               {"dropout_forward", "keep", "[4]", "[3]"});
  expect_error([&] { ops::dropout_forward(cpu_context(), out, x, x, 1.0); }, ErrorCode::INVALID_ARGUMENT,
               {"dropout_forward", "p = 1"});
  Tensor dx = Tensor::empty(DType::F32, {4});
  expect_error([&] { ops::dropout_backward(cpu_context(), dx, x, x, 0.1); }, ErrorCode::INVALID_ARGUMENT,
               {"dropout_backward", "dx", "[4]"});
  Tensor ints = Tensor::empty(DType::I32, {3});
  expect_error([&] { ops::dropout_mask(cpu_context(), ints, 0.1, 1, 0); }, ErrorCode::INVALID_ARGUMENT,
               {"dropout_mask", "keep", "i32"});
  expect_error([&] { ops::dropout_mask(cpu_context(), out, -0.1, 1, 0); }, ErrorCode::INVALID_ARGUMENT,
               {"dropout_mask", "p = -0.1"});
}

}  // namespace
}  // namespace nlpf::test
