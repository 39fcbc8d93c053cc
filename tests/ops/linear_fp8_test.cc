// linear_fp8_forward on the CPU (the reference the CUDA fp8 GEMM is compared with): against the product of
// the dequantised operands computed here in double, rounded once to the output dtype; the argument checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/fp8.h"
#include "ops/linear.h"
#include "ops/op_test_util.h"

namespace nlpf {
namespace {

// Codes of random values quantised with their own amax scale; the scale in a [1] f32 tensor.
struct Quantized {
  Tensor codes, scale;
  std::vector<double> values;  // decode(code) * scale: what the op multiplies
};

Quantized quantized(std::mt19937& rng, const Shape& shape, float spread) {
  const int64_t n = shape_numel(shape);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  const float scale = e4m3_scale_for_amax(amax_of(x, "test"));
  Quantized q{Tensor::empty(DType::F8E4M3, shape), test::f32_tensor({1}, {scale}), {}};
  auto* codes = static_cast<uint8_t*>(q.codes.raw_data());
  quantize_e4m3(x, scale, std::span<uint8_t>(codes, static_cast<size_t>(n)));
  for (int64_t i = 0; i < n; ++i) q.values.push_back(static_cast<double>(e4m3_to_f32(codes[i])) * scale);
  return q;
}

TEST(LinearFp8, CpuReferenceIsTheProductOfTheDequantisedOperands) {
  std::mt19937 rng(8);
  const int64_t N = 9, C = 48, OC = 32;
  for (const DType out : {DType::BF16, DType::F16}) {
    const Quantized x = quantized(rng, {N, C}, 2.0f), w = quantized(rng, {OC, C}, 0.05f);
    const Tensor bias = test::f32_tensor({OC}, test::random_vector(rng, OC, -0.5, 0.5)).to(out);
    Tensor y = Tensor::empty(out, {N, OC});
    ops::linear_fp8_forward(cpu_context(), y, x.codes, w.codes, x.scale, w.scale, bias);
    const Tensor y32 = y.to(DType::F32), bias32 = bias.to(DType::F32);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t o = 0; o < OC; ++o) {
        double sum = bias32.data<float>()[o];
        for (int64_t c = 0; c < C; ++c) {
          sum += x.values[static_cast<size_t>(n * C + c)] * w.values[static_cast<size_t>(o * C + c)];
        }
        // One rounding to 8 (bf16) or 11 (f16) significant bits.
        const double tol = std::fabs(sum) * (out == DType::BF16 ? 1.0 / 256 : 1.0 / 2048) + 1e-6;
        EXPECT_NEAR(y32.data<float>()[n * OC + o], sum, tol)
            << dtype_name(out) << " y[" << n << ", " << o << "]";
      }
    }
  }
}

TEST(LinearFp8, CpuReferenceScalesEveryOutputChannelByItsOwnScale) {
  // Per-channel weight scales ([OC]) with x's scale given once per row ([R >= N], the form cuBLASLt's
  // outer-vector mode reads): y [n, o] = sum decode(x) decode(w) x_scale[n] w_scale[o] + bias.
  std::mt19937 rng(18);
  const int64_t N = 7, C = 32, OC = 16;
  const Quantized x = quantized(rng, {N, C}, 2.0f);
  std::vector<float> weight(static_cast<size_t>(OC * C));
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (int64_t o = 0; o < OC; ++o) {  // rows 16^-k apart, so one scale for all would not do
    for (int64_t c = 0; c < C; ++c)
      weight[static_cast<size_t>(o * C + c)] = normal(rng) * std::ldexp(1.0f, -4 * static_cast<int>(o % 4));
  }
  const QuantizedWeight q = quantize_weight_e4m3(weight, OC, C, Fp8Granularity::PER_CHANNEL);
  Tensor w = Tensor::empty(DType::F8E4M3, {OC, C});
  std::memcpy(w.raw_data(), q.codes.data(), q.codes.size());
  const Tensor ws = test::f32_tensor({OC}, std::vector<double>(q.scales.begin(), q.scales.end()));
  const float x_scale = x.scale.data<float>()[0];
  const Tensor xs = test::f32_tensor({N + 2}, std::vector<double>(static_cast<size_t>(N + 2), x_scale));
  const Tensor bias = Tensor::zeros(DType::BF16, {OC});
  Tensor y = Tensor::empty(DType::BF16, {N, OC});
  ops::linear_fp8_forward(cpu_context(), y, x.codes, w, xs, ws, bias);
  const Tensor y32 = y.to(DType::F32);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < OC; ++o) {
      double sum = 0;
      for (int64_t c = 0; c < C; ++c) {
        sum += x.values[static_cast<size_t>(n * C + c)] *
               static_cast<double>(e4m3_to_f32(q.codes[static_cast<size_t>(o * C + c)])) *
               q.scales[static_cast<size_t>(o)];
      }
      EXPECT_NEAR(y32.data<float>()[n * OC + o], sum, std::fabs(sum) / 256 + 1e-12)
          << "y[" << n << ", " << o << "]";
    }
  }
  // The scale shapes: weight_scale neither [1] nor [OC]; per channel with x_scale shorter than N rows.
  try {
    ops::linear_fp8_forward(cpu_context(), y, x.codes, w, xs, test::f32_tensor({3}, {1, 1, 1}), bias);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("weight_scale"), std::string::npos) << e.what();
  }
  try {
    ops::linear_fp8_forward(cpu_context(), y, x.codes, w, x.scale, ws, bias);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("x_scale"), std::string::npos) << e.what();
  }
}

TEST(LinearFp8, RefusesWhatItCannotDo) {
  std::mt19937 rng(9);
  const Quantized x = quantized(rng, {2, 16}, 1.0f), w = quantized(rng, {16, 16}, 1.0f);
  const Tensor bias = Tensor::zeros(DType::BF16, {16});
  Tensor y32 = Tensor::empty(DType::F32, {2, 16});
  try {
    ops::linear_fp8_forward(cpu_context(), y32, x.codes, w.codes, x.scale, w.scale, bias);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("bf16 or f16"), std::string::npos) << e.what();
  }
  Tensor y = Tensor::empty(DType::BF16, {2, 16});
  const Tensor x16 = Tensor::zeros(DType::BF16, {2, 16});
  try {
    ops::linear_fp8_forward(cpu_context(), y, x16, w.codes, x.scale, w.scale, bias);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("x"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
