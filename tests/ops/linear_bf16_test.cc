// linear_forward with bf16 weights (bf16 inference on the CPU) against the f32 op on the same bf16-rounded
// inputs: products of two bf16 values are exact in fp32, so the only difference is summation order
// (tolerance 1e-4 relative, tighter than STYLE's bf16 4e-2 because the inputs are rounded identically).
// Skips with the reason where oneDNN or AVX512-BF16 is missing.
#include <gtest/gtest.h>

#include <cmath>

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
    EXPECT_NE(std::string(e.what()).find("inference only"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
