// gelu_forward/backward (f32 Tensor API): known values of the exact erf GELU and its derivative, f32
// against the double kernel, and argument errors naming the op and the tensor.
#include "ops/gelu.h"
#include "ops/gelu_cpu.h"

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kF32{1e-5, 1e-6};

TEST(Gelu, KnownValues) {
  // x Phi(x) and Phi(x) + x phi(x) at x = 0, 1, -1, 2, -3 (Phi(1) = 0.8413447460685429).
  Tensor x = f32_tensor({5}, {0, 1, -1, 2, -3});
  Tensor out = Tensor::empty(DType::F32, {5}), dx = Tensor::empty(DType::F32, {5});
  ops::gelu_forward(cpu_context(), out, x);
  EXPECT_TRUE(all_close(
      out, {0, 0.8413447460685429, -0.15865525393145707, 1.9544997361036416, -0.00404969409489031}, kF32));
  ops::gelu_backward(cpu_context(), dx, f32_tensor({5}, {1, 1, 1, 1, 0}), x);
  EXPECT_TRUE(all_close(dx, {0.5, 1.0833154705876864, -0.08331547058768629, 1.085231801078197, 0}, kF32));
}

TEST(Gelu, F32MatchesDoubleKernel) {
  const int64_t N = 101;
  std::mt19937 rng(51);
  const std::vector<double> x = round_to_float(random_vector(rng, N, -5, 5)),
                            dout = round_to_float(random_vector(rng, N));
  Tensor xt = f32_tensor({N}, x), out = Tensor::empty(DType::F32, {N}), dx = Tensor::empty(DType::F32, {N});
  ops::gelu_forward(cpu_context(), out, xt);
  ops::gelu_backward(cpu_context(), dx, f32_tensor({N}, dout), xt);
  std::vector<double> ref_out(N), ref_dx(N);
  cpu::gelu_forward(ref_out.data(), x.data(), N);
  cpu::gelu_backward(ref_dx.data(), dout.data(), x.data(), N);
  EXPECT_TRUE(all_close(out, ref_out, kF32));
  EXPECT_TRUE(all_close(dx, ref_dx, kF32));
}

TEST(Gelu, InPlace) {
  Tensor x = f32_tensor({2}, {1, -1});
  ops::gelu_forward(cpu_context(), x, x);
  EXPECT_TRUE(all_close(x, {0.8413447460685429, -0.15865525393145707}, kF32));
}

TEST(Gelu, ArgumentErrorsNameOpAndTensor) {
  Tensor x = Tensor::zeros(DType::F32, {3, 4}), out = Tensor::empty(DType::F32, {4, 3});
  expect_error([&] { ops::gelu_forward(cpu_context(), out, x); }, ErrorCode::INVALID_ARGUMENT,
               {"gelu_forward", "out", "[4, 3]", "[3, 4]"});
  Tensor ints = Tensor::zeros(DType::I32, {3, 4});
  expect_error([&] { ops::gelu_backward(cpu_context(), ints, x, x); }, ErrorCode::INVALID_ARGUMENT,
               {"gelu_backward", "dx", "i32"});
}

}  // namespace
}  // namespace nlpf::test
