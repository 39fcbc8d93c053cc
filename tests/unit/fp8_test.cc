// FP8 E4M3 on the host (core/fp8.h): every one of the 256 codes decoded against the format's formula, encode
// inverting decode, round-to-nearest-even at ties, saturation, subnormals; scales, per-tensor and per-channel
// weight quantisation within the format's half-step, and the calibration observer.
#include "core/fp8.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"

namespace nlpf {
namespace {

// The OCP E4M3FN definition, written out independently of the implementation.
double reference_decode(int code) {
  const int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
  const double sign = s ? -1.0 : 1.0;
  if (e == 0) return sign * (m / 8.0) * std::pow(2.0, -6);
  return sign * (1.0 + m / 8.0) * std::pow(2.0, e - 7);
}

TEST(Fp8, EveryCodeDecodesAsTheFormatSays) {
  for (int code = 0; code < 256; ++code) {
    const float value = e4m3_to_f32(static_cast<uint8_t>(code));
    if ((code & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(value)) << "code " << code;
      continue;
    }
    EXPECT_EQ(static_cast<double>(value), reference_decode(code)) << "code " << code;
  }
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0x08), 0.015625f);     // smallest normal 2^-6
  EXPECT_EQ(e4m3_to_f32(0x01), 0.001953125f);  // smallest subnormal 2^-9
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);
}

TEST(Fp8, EncodeInvertsDecodeOnEveryFiniteCode) {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F) continue;  // NaN
    EXPECT_EQ(f32_to_e4m3(e4m3_to_f32(static_cast<uint8_t>(code))), code) << "code " << code;
  }
}

TEST(Fp8, RoundsToNearestEvenAtTiesAndToNearestElsewhere) {
  EXPECT_EQ(f32_to_e4m3(1.0625f), 0x38);  // halfway 1.0 (m 0) / 1.125 (m 1): to m 0
  EXPECT_EQ(f32_to_e4m3(1.1875f), 0x3A);  // halfway 1.125 / 1.25: to m 2
  EXPECT_EQ(f32_to_e4m3(1.07f), 0x39);    // above the tie: up
  EXPECT_EQ(f32_to_e4m3(1.05f), 0x38);    // below: down
  EXPECT_EQ(f32_to_e4m3(1.9375f), 0x40);  // halfway 1.875 (m 7) / 2.0: to 2.0, the next binade
  EXPECT_EQ(f32_to_e4m3(432.0f), 0x7E);   // halfway 416 / 448: to 448 (m 6)
  EXPECT_EQ(f32_to_e4m3(-1.1875f), 0xBA);
  // Every value halfway between two neighbouring positive codes goes to the one with the even mantissa.
  for (int code = 0; code < 0x7E; ++code) {
    const double lo = reference_decode(code), hi = reference_decode(code + 1);
    const auto mid = static_cast<float>((lo + hi) / 2);
    EXPECT_EQ(f32_to_e4m3(mid), (code % 2 == 0) ? code : code + 1)
        << "between codes " << code << " and " << code + 1;
  }
}

TEST(Fp8, SubnormalsAndZeros) {
  EXPECT_EQ(f32_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(f32_to_e4m3(-0.0f), 0x80);
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -10)), 0x00);         // halfway 0 / 2^-9: to 0 (even)
  EXPECT_EQ(f32_to_e4m3(3.0f * std::ldexp(1.0f, -10)), 0x02);  // halfway 2^-9 / 2^-8: to 2^-8 (even)
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -20)), 0x00);
  EXPECT_EQ(f32_to_e4m3(0.0155f), 0x08);  // rounds up from the subnormals into the smallest normal
}

TEST(Fp8, SaturatesAndKeepsNaN) {
  EXPECT_EQ(f32_to_e4m3(448.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(470.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(1e30f), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-1e30f), 0xFE);
  EXPECT_EQ(f32_to_e4m3(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(f32_to_e4m3(-std::numeric_limits<float>::infinity()), 0xFE);
  EXPECT_TRUE(std::isnan(e4m3_to_f32(f32_to_e4m3(std::nanf("")))));
}

TEST(Fp8, PerChannelWeightWithinHalfAStepOfEachRow) {
  std::mt19937 rng(5);
  const int64_t OC = 7, C = 33;
  std::vector<float> w(static_cast<size_t>(OC * C));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t o = 0; o < OC; ++o) {
    for (int64_t c = 0; c < C; ++c)
      w[static_cast<size_t>(o * C + c)] = normal(rng) * std::pow(10.0f, o - 3.0f);
  }
  const QuantizedWeight q = quantize_weight_e4m3(w, OC, C, Fp8Granularity::PER_CHANNEL);
  ASSERT_EQ(q.scales.size(), static_cast<size_t>(OC));
  for (int64_t o = 0; o < OC; ++o) {
    float amax = 0;
    for (int64_t c = 0; c < C; ++c) amax = std::max(amax, std::fabs(w[static_cast<size_t>(o * C + c)]));
    EXPECT_FLOAT_EQ(q.scales[static_cast<size_t>(o)], amax / 448.0f) << "row " << o;
    for (int64_t c = 0; c < C; ++c) {
      const size_t i = static_cast<size_t>(o * C + c);
      const double back = e4m3_to_f32(q.codes[i]) * static_cast<double>(q.scales[static_cast<size_t>(o)]);
      const double x = w[i], scaled = std::fabs(x) / q.scales[static_cast<size_t>(o)];
      // Half a step: 2^-4 relative in the normal range, 2^-10 of the scale below it.
      const double bound = scaled >= std::ldexp(1.0, -6)
                               ? std::fabs(x) * std::ldexp(1.0, -4)
                               : q.scales[static_cast<size_t>(o)] * std::ldexp(1.0, -10);
      EXPECT_LE(std::fabs(back - x), bound * (1 + 1e-6)) << "row " << o << " column " << c;
    }
    // The row's largest |value| maps to the largest code.
    bool has_max = false;
    for (int64_t c = 0; c < C; ++c) has_max |= (q.codes[static_cast<size_t>(o * C + c)] & 0x7F) == 0x7E;
    EXPECT_TRUE(has_max) << "row " << o;
  }
  // One scale for the whole tensor: the smallest rows lose their resolution (what per-channel is for).
  const QuantizedWeight t = quantize_weight_e4m3(w, OC, C, Fp8Granularity::PER_TENSOR);
  ASSERT_EQ(t.scales.size(), 1u);
  int zero_codes = 0;
  for (int64_t c = 0; c < C; ++c) zero_codes += (t.codes[static_cast<size_t>(c)] & 0x7F) == 0;
  EXPECT_EQ(zero_codes, C) << "row 0 (values ~1e-3 against an amax ~1e3) flushes to 0 per tensor";
}

TEST(Fp8, WeightScaleNamesRoundTripAndABadOneNamesTheOption) {
  for (const Fp8Granularity g : {Fp8Granularity::PER_TENSOR, Fp8Granularity::PER_CHANNEL}) {
    EXPECT_EQ(parse_fp8_weight_scales(fp8_weight_scales_name(g)), g);
  }
  EXPECT_STREQ(fp8_weight_scales_name(Fp8Granularity::PER_CHANNEL), "channel");
  try {
    parse_fp8_weight_scales("per-row");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("--fp8-weight-scales per-row"), std::string::npos) << e.what();
  }
}

TEST(Fp8, ObserverTakesTheLargestMagnitudeOverBatchesAndRefusesNonFinite) {
  AmaxObserver observer("layer 0 attention output");
  observer.observe(std::vector<float>{0.5f, -3.0f, 2.0f});
  observer.observe(std::vector<float>{1.0f, 2.5f});
  EXPECT_EQ(observer.amax(), 3.0f);
  EXPECT_EQ(observer.values_seen(), 5);
  EXPECT_FLOAT_EQ(observer.scale(), 3.0f / 448.0f);
  try {
    observer.observe(std::vector<float>{1.0f, std::nanf("")});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NUMERIC);
    EXPECT_NE(std::string(e.what()).find("layer 0 attention output"), std::string::npos) << e.what();
  }
  EXPECT_EQ(AmaxObserver("empty").scale(), 1.0f);  // nothing seen: an all-zero tensor stays 0
}

}  // namespace
}  // namespace nlpf
