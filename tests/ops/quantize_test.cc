// quantize_e4m3_forward on the CPU: the codes of core/fp8.h for x / scale, from every float dtype; refusals.
#include "ops/quantize.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/fp8.h"
#include "ops/op_test_util.h"

namespace nlpf {
namespace {

TEST(Quantize, CodesOfTheScaledValuesFromEveryFloatDtype) {
  const std::vector<double> values = {0.0, 1.0, -2.5, 7.0, 100.0, -1000.0, 0.01};
  for (const DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    const Tensor x = test::f32_tensor({7}, values).to(dtype);
    Tensor codes = Tensor::empty(DType::F8E4M3, {7});
    ops::quantize_e4m3_forward(cpu_context(), codes, x, test::f32_tensor({1}, {0.5}));
    const Tensor x32 = x.to(DType::F32);
    for (int i = 0; i < 7; ++i) {
      EXPECT_EQ(static_cast<const uint8_t*>(codes.raw_data())[i], f32_to_e4m3(x32.data<float>()[i] / 0.5f))
          << dtype_name(dtype) << " " << values[static_cast<size_t>(i)];
    }
    EXPECT_EQ(static_cast<const uint8_t*>(codes.raw_data())[5], 0xFE);  // -2000 saturates at -448
  }
}

TEST(Quantize, RefusesBadScalesAndDtypes) {
  const Tensor x = test::f32_tensor({2}, {1.0, 2.0});
  Tensor codes = Tensor::empty(DType::F8E4M3, {2});
  EXPECT_THROW(ops::quantize_e4m3_forward(cpu_context(), codes, x, test::f32_tensor({1}, {0.0})), Error);
  Tensor wrong = Tensor::empty(DType::F32, {2});
  EXPECT_THROW(ops::quantize_e4m3_forward(cpu_context(), wrong, x, test::f32_tensor({1}, {1.0})), Error);
  const Tensor ints = Tensor::zeros(DType::I32, {2});
  EXPECT_THROW(ops::quantize_e4m3_forward(cpu_context(), codes, ints, test::f32_tensor({1}, {1.0})), Error);
}

}  // namespace
}  // namespace nlpf
