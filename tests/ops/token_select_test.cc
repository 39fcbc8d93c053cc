// token_select_forward/backward (f32 Tensor API): the selected rows, the zero-filled backward, and
// argument errors naming the op and the tensor.
#include "ops/token_select.h"

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

TEST(TokenSelect, SelectsAndScatters) {
  const int64_t B = 2, T = 3, C = 2;
  std::vector<double> x(B * T * C);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  Tensor out = Tensor::empty(DType::F32, {B, C});
  ops::token_select_forward(cpu_context(), out, f32_tensor({B, T, C}, x), 1);
  EXPECT_TRUE(all_close(out, {2, 3, 8, 9}, Tolerance{0, 0}));
  Tensor dx = f32_tensor({B, T, C}, std::vector<double>(B * T * C, 7.0));  // overwritten, not accumulated
  ops::token_select_backward(cpu_context(), dx, f32_tensor({B, C}, {1, 2, 3, 4}), 0);
  EXPECT_TRUE(all_close(dx, {1, 2, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0}, Tolerance{0, 0}));
}

TEST(TokenSelect, ArgumentErrorsNameOpAndTensor) {
  Tensor x = Tensor::zeros(DType::F32, {2, 3, 4}), out = Tensor::empty(DType::F32, {2, 4});
  expect_error([&] { ops::token_select_forward(cpu_context(), out, x, 3); }, ErrorCode::INVALID_ARGUMENT,
               {"token_select_forward", "index = 3", "[2, 3, 4]"});
  Tensor bad_out = Tensor::empty(DType::F32, {2, 3});
  expect_error([&] { ops::token_select_forward(cpu_context(), bad_out, x, 0); }, ErrorCode::INVALID_ARGUMENT,
               {"token_select_forward", "out", "[2, 3]", "[2, 4]"});
  expect_error([&] { ops::token_select_backward(cpu_context(), x, bad_out, 0); }, ErrorCode::INVALID_ARGUMENT,
               {"token_select_backward", "dout", "[2, 3]"});
}

}  // namespace
}  // namespace nlpf::test
