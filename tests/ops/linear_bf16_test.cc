// linear_forward with bf16 weights (bf16 inference on the CPU) against the f32 op on the same bf16-rounded
// inputs: products of two bf16 values are exact in fp32, so the only difference is summation order
// (tolerance 1e-4 relative, tighter than STYLE's bf16 4e-2 because the inputs are rounded identically).
// Skips with the reason where oneDNN or AVX512-BF16 is missing. Also the mixed-precision training form (x,
// weight and dy of one 16-bit dtype), which the CPU runs as the f32 op on the operands' values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/bf16_gemm.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/random.h"
#include "ops/linear.h"

namespace nlpf {
namespace {

Tensor random_tensor(Shape shape, uint64_t seed) {
  Tensor t = Tensor::empty(DType::F32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = 2.0f * philox_uniform(seed, static_cast<uint64_t>(i)) - 1.0f;
  return t;
}

Tensor rounded_to_bf16(const Tensor& t) {
  Tensor r = t.clone();
  float* p = r.data<float>();
  for (int64_t i = 0; i < r.numel(); ++i) p[i] = bf16_to_f32(f32_to_bf16(p[i]));
  return r;
}

TEST(LinearBf16, MatchesF32OnBf16RoundedInputs) {
  if (const auto reason = cpu::bf16_gemm_unavailable_reason())
    GTEST_SKIP() << "bf16 GEMM unavailable: " << *reason;
  for (const auto& [N, C, OC] :
       {std::tuple<int64_t, int64_t, int64_t>{7, 33, 5}, {64, 384, 1536}, {1, 16, 2}}) {
    const Tensor x = random_tensor({N, C}, 1);
    const Tensor w = random_tensor({OC, C}, 2);
    const Tensor b = random_tensor({OC}, 3);
    Tensor y_bf16 = Tensor::empty(DType::F32, {N, OC});
    ops::linear_forward(cpu_context(), y_bf16, x, w.to(DType::BF16), b);
    Tensor y_ref = Tensor::empty(DType::F32, {N, OC});
    ops::linear_forward(cpu_context(), y_ref, rounded_to_bf16(x), rounded_to_bf16(w), b);
    const float* a = y_bf16.data<float>();
    const float* r = y_ref.data<float>();
    for (int64_t i = 0; i < y_ref.numel(); ++i) {
      ASSERT_NEAR(a[i], r[i], 1e-5 + 1e-4 * std::fabs(r[i]))
          << "element " << i << " of [" << N << "," << OC << "]";
    }
  }
}

// Mixed-precision training's form: x, weight and dy all of one 16-bit dtype are read as their values, so the
// results equal the f32 op's on the widened operands bit for bit (the CPU has no 16-bit training kernels).
TEST(LinearBf16, SixteenBitOperandsAreTheirValuesInF32) {
  for (const DType dtype : {DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const int64_t N = 7, C = 33, OC = 5;
    const Tensor x = random_tensor({N, C}, 1).to(dtype), w = random_tensor({OC, C}, 2).to(dtype),
                 b = random_tensor({OC}, 3), dy = random_tensor({N, OC}, 4).to(dtype);
    Tensor y = Tensor::empty(DType::F32, {N, OC}), y_ref = Tensor::empty(DType::F32, {N, OC});
    ops::linear_forward(cpu_context(), y, x, w, b);
    ops::linear_forward(cpu_context(), y_ref, x.to(DType::F32), w.to(DType::F32), b);
    EXPECT_EQ(0, std::memcmp(y.raw_data(), y_ref.raw_data(), y.nbytes()));

    Tensor dx = Tensor::empty(DType::F32, {N, C}), dw = Tensor::zeros(DType::F32, {OC, C}),
           db = Tensor::zeros(DType::F32, {OC});
    Tensor dx_ref = Tensor::empty(DType::F32, {N, C}), dw_ref = Tensor::zeros(DType::F32, {OC, C}),
           db_ref = Tensor::zeros(DType::F32, {OC});
    ops::linear_backward(cpu_context(), dx, dw, db, dy, x, w);
    ops::linear_backward(cpu_context(), dx_ref, dw_ref, db_ref, dy.to(DType::F32), x.to(DType::F32),
                         w.to(DType::F32));
    EXPECT_EQ(0, std::memcmp(dx.raw_data(), dx_ref.raw_data(), dx.nbytes()));
    EXPECT_EQ(0, std::memcmp(dw.raw_data(), dw_ref.raw_data(), dw.nbytes()));
    EXPECT_EQ(0, std::memcmp(db.raw_data(), db_ref.raw_data(), db.nbytes()));

    // Operands of two dtypes are refused: dy must be x's dtype.
    Tensor dx2 = Tensor::empty(DType::F32, {N, C});
    EXPECT_THROW(ops::linear_backward(cpu_context(), dx2, dw, db, dy.to(DType::F32), x, w), Error);
  }
}

TEST(LinearBf16, Bf16WeightsAreForInferenceOnly) {
  const Tensor x = random_tensor({2, 4}, 1);
  const Tensor w = random_tensor({3, 4}, 2).to(DType::BF16);
  Tensor dx = Tensor::empty(DType::F32, {2, 4});
  Tensor dw = Tensor::zeros(DType::F32, {3, 4});
  Tensor db = Tensor::zeros(DType::F32, {3});
  const Tensor dy = random_tensor({2, 3}, 4);
  try {
    ops::linear_backward(cpu_context(), dx, dw, db, dy, x, w);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("expected both f32, both bf16 or both f16"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace nlpf
