// tanh_forward/backward (f32 Tensor API): values against std::tanh in double, the backward from the saved
// output, f32 against the double kernel, and argument errors naming the op and the tensor.
#include "ops/tanh.h"
#include "ops/tanh_cpu.h"

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kF32{1e-5, 1e-6};

TEST(Tanh, ForwardAndBackward) {
  const int64_t N = 37;
  std::mt19937 rng(61);
  const std::vector<double> x = round_to_float(random_vector(rng, N, -4, 4)),
                            dout = round_to_float(random_vector(rng, N));
  Tensor out = Tensor::empty(DType::F32, {N}), dx = Tensor::empty(DType::F32, {N});
  ops::tanh_forward(cpu_context(), out, f32_tensor({N}, x));
  ops::tanh_backward(cpu_context(), dx, f32_tensor({N}, dout), out);
  std::vector<double> ref_out(N), ref_dx(N), kernel_dx(N);
  for (int64_t i = 0; i < N; ++i) {
    ref_out[i] = std::tanh(x[i]);
    ref_dx[i] = dout[i] / (std::cosh(x[i]) * std::cosh(x[i]));  // d tanh = sech^2
  }
  cpu::tanh_backward(kernel_dx.data(), dout.data(), ref_out.data(), N);
  EXPECT_TRUE(all_close(out, ref_out, kF32));
  EXPECT_TRUE(all_close(dx, ref_dx, kF32));
  EXPECT_TRUE(all_close(kernel_dx, ref_dx, Tolerance{1e-12, 1e-14}));
}

TEST(Tanh, ArgumentErrorsNameOpAndTensor) {
  Tensor x = Tensor::zeros(DType::F32, {2, 3}), bad = Tensor::empty(DType::F32, {3});
  expect_error([&] { ops::tanh_forward(cpu_context(), bad, x); }, ErrorCode::INVALID_ARGUMENT,
               {"tanh_forward", "out", "[3]"});
  expect_error([&] { ops::tanh_backward(cpu_context(), bad, x, x); }, ErrorCode::INVALID_ARGUMENT,
               {"tanh_backward", "dx", "[3]"});
}

}  // namespace
}  // namespace nlpf::test
