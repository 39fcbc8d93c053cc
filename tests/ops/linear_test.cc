// linear_forward/backward (f32 Tensor API through sgemm): a hand example, values against a naive triple
// loop, f32 against the double kernel (dgemm), accumulation of dweight/dbias, and argument errors.
#include "ops/linear.h"
#include "ops/linear_cpu.h"

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kF32{1e-5, 1e-6};
constexpr int64_t N = 5, C = 11, OC = 7;

TEST(Linear, HandExample) {
  // x [1,2] = [[1, 2]], W [3,2] = [[1, 0], [0, 1], [1, 1]], b = [0.5, -1, 0]: y = [1.5, 1, 3].
  Tensor y = Tensor::empty(DType::F32, {1, 3});
  ops::linear_forward(cpu_context(), y, f32_tensor({1, 2}, {1, 2}), f32_tensor({3, 2}, {1, 0, 0, 1, 1, 1}),
                      f32_tensor({3}, {0.5, -1, 0}));
  EXPECT_TRUE(all_close(y, {1.5, 1, 3}, Tolerance{0, 0}));
}

TEST(Linear, ForwardMatchesNaiveLoops) {
  std::mt19937 rng(41);
  const std::vector<double> x = round_to_float(random_vector(rng, N * C)),
                            weight = round_to_float(random_vector(rng, OC * C)),
                            bias = round_to_float(random_vector(rng, OC));
  Tensor y = Tensor::empty(DType::F32, {1, N, OC});
  ops::linear_forward(cpu_context(), y, f32_tensor({1, N, C}, x), f32_tensor({OC, C}, weight),
                      f32_tensor({OC}, bias));
  std::vector<double> ref(N * OC);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < OC; ++o) {
      double sum = bias[o];
      for (int64_t c = 0; c < C; ++c) sum += x[n * C + c] * weight[o * C + c];
      ref[n * OC + o] = sum;
    }
  EXPECT_TRUE(all_close(y, ref, kF32));
}

TEST(Linear, BackwardF32MatchesDoubleKernelAndAccumulates) {
  std::mt19937 rng(42);
  const std::vector<double> x = round_to_float(random_vector(rng, N * C)),
                            weight = round_to_float(random_vector(rng, OC * C)),
                            dy = round_to_float(random_vector(rng, N * OC)),
                            dweight0 = round_to_float(random_vector(rng, OC * C)),
                            dbias0 = round_to_float(random_vector(rng, OC));
  Tensor dx = Tensor::empty(DType::F32, {N, C}), dweight = f32_tensor({OC, C}, dweight0),
         dbias = f32_tensor({OC}, dbias0);
  ops::linear_backward(cpu_context(), dx, dweight, dbias, f32_tensor({N, OC}, dy), f32_tensor({N, C}, x),
                       f32_tensor({OC, C}, weight));
  std::vector<double> ref_dx(N * C), ref_dweight = dweight0, ref_dbias = dbias0;
  cpu::linear_backward(ref_dx.data(), ref_dweight.data(), ref_dbias.data(), dy.data(), x.data(),
                       weight.data(), N, C, OC);
  EXPECT_TRUE(all_close(dx, ref_dx, kF32));
  EXPECT_TRUE(all_close(dweight, ref_dweight, kF32));
  EXPECT_TRUE(all_close(dbias, ref_dbias, kF32));
  double db0 = dbias0[0];
  for (int64_t n = 0; n < N; ++n) db0 += dy[n * OC];
  EXPECT_NEAR(dbias.data<float>()[0], db0, 1e-5);
}

TEST(Linear, BackwardAccumulatesDxWhenAsked) {
  // GradientOutput::ACCUMULATE adds dy W to dx (a residual's gradient already there) instead of overwriting.
  std::mt19937 rng(43);
  const std::vector<double> x = round_to_float(random_vector(rng, N * C)),
                            weight = round_to_float(random_vector(rng, OC * C)),
                            dy = round_to_float(random_vector(rng, N * OC)),
                            dx0 = round_to_float(random_vector(rng, N * C));
  Tensor dx = f32_tensor({N, C}, dx0), dweight = Tensor::zeros(DType::F32, {OC, C}),
         dbias = Tensor::zeros(DType::F32, {OC});
  ops::linear_backward(cpu_context(), dx, dweight, dbias, f32_tensor({N, OC}, dy), f32_tensor({N, C}, x),
                       f32_tensor({OC, C}, weight), ops::GradientOutput::ACCUMULATE);
  std::vector<double> ref_dx = dx0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t o = 0; o < OC; ++o) ref_dx[n * C + c] += dy[n * OC + o] * weight[o * C + c];
  EXPECT_TRUE(all_close(dx, ref_dx, kF32));
}

TEST(Linear, ArgumentErrorsNameOpAndTensor) {
  Tensor x = Tensor::zeros(DType::F32, {N, C}), y = Tensor::empty(DType::F32, {N, OC});
  Tensor weight = Tensor::zeros(DType::F32, {OC, C}), bias = Tensor::zeros(DType::F32, {OC});
  Tensor transposed = Tensor::zeros(DType::F32, {C, OC});
  expect_error([&] { ops::linear_forward(cpu_context(), y, x, transposed, bias); },
               ErrorCode::INVALID_ARGUMENT, {"linear_forward", "weight", "[11, 7]", "[OC, 11]"});
  Tensor bad_bias = Tensor::zeros(DType::F32, {C});
  expect_error([&] { ops::linear_forward(cpu_context(), y, x, weight, bad_bias); },
               ErrorCode::INVALID_ARGUMENT, {"linear_forward", "bias", "[11]", "[7]"});
  Tensor bad_y = Tensor::empty(DType::F32, {OC, N});
  expect_error([&] { ops::linear_forward(cpu_context(), bad_y, x, weight, bias); },
               ErrorCode::INVALID_ARGUMENT, {"linear_forward", "y", "[7, 5]", "[5, 7]"});
  Tensor dweight = Tensor::zeros(DType::F32, {OC, C}), dbias = Tensor::zeros(DType::F32, {OC});
  Tensor dx = Tensor::empty(DType::F32, {N, C});
  expect_error([&] { ops::linear_backward(cpu_context(), dx, dweight, dbias, x, x, weight); },
               ErrorCode::INVALID_ARGUMENT, {"linear_backward", "dy", "[5, 11]", "[5, 7]"});
}

}  // namespace
}  // namespace nlpf::test
