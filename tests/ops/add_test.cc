// add_forward (f32 Tensor API): values, in-place use as out = a, and argument errors.
#include "ops/add.h"

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

TEST(Add, ValuesAndInPlace) {
  Tensor a = f32_tensor({2, 2}, {1, 2, 3, 4}), b = f32_tensor({2, 2}, {0.5, -2, 0, 1});
  Tensor out = Tensor::empty(DType::F32, {2, 2});
  ops::add_forward(cpu_context(), out, a, b);
  EXPECT_TRUE(all_close(out, {1.5, 0, 3, 5}, Tolerance{0, 0}));
  ops::add_forward(cpu_context(), a, a, b);
  EXPECT_TRUE(all_close(a, {1.5, 0, 3, 5}, Tolerance{0, 0}));
}

TEST(Add, ArgumentErrorsNameOpAndTensor) {
  Tensor a = Tensor::zeros(DType::F32, {2, 3}), b = Tensor::zeros(DType::F32, {3, 2});
  Tensor out = Tensor::empty(DType::F32, {2, 3});
  expect_error([&] { ops::add_forward(cpu_context(), out, a, b); }, ErrorCode::INVALID_ARGUMENT,
               {"add_forward", "b", "[3, 2]", "[2, 3]"});
}

}  // namespace
}  // namespace nlpf::test
