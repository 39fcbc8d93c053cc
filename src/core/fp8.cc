// E4M3 encode/decode by arithmetic on exact values (every E4M3 value and every step below is exact in
// double), so the rounding is the FPU's round-to-nearest-even on the scaled mantissa.
#include "core/fp8.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace nlpf {

float e4m3_to_f32(uint8_t code) {
  const bool negative = (code & 0x80u) != 0;
  const int exponent = (code >> 3) & 0xF, mantissa = code & 0x7;
  if (exponent == 15 && mantissa == 7) return std::nanf("");
  const double magnitude = exponent == 0 ? std::ldexp(mantissa / 8.0, -6)  // subnormal: m/8 2^-6
                                         : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return static_cast<float>(negative ? -magnitude : magnitude);
}

uint8_t f32_to_e4m3(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80u : 0x00u;
  if (std::isnan(x)) return static_cast<uint8_t>(sign | 0x7Fu);
  const double a = std::fabs(static_cast<double>(x));
  if (a >= kE4M3Max) return static_cast<uint8_t>(sign | 0x7Eu);  // saturate (448 = 0.1111.110)
  if (a < std::ldexp(1.0, -6)) {
    // Subnormal range: steps of 2^-9; 8 steps is the smallest normal, whose code is 0.0001.000 = 8 as well.
    const auto steps = static_cast<uint8_t>(std::nearbyint(std::ldexp(a, 9)));
    return static_cast<uint8_t>(sign | steps);
  }
  int e2 = 0;
  const double fraction = std::frexp(a, &e2);  // a = fraction 2^e2, fraction in [0.5, 1)
  int exponent = e2 - 1;                       // a = (2 fraction) 2^exponent, 2 fraction in [1, 2)
  auto mantissa = static_cast<int>(std::nearbyint((2.0 * fraction - 1.0) * 8.0));
  if (mantissa == 8) {  // rounded up to the next power of two
    mantissa = 0;
    ++exponent;
  }
  const int biased = exponent + 7;
  if (biased > 15 || (biased == 15 && mantissa == 7)) return static_cast<uint8_t>(sign | 0x7Eu);
  return static_cast<uint8_t>(sign | (biased << 3) | mantissa);
}

float e4m3_scale_for_amax(float amax) {
  NLPF_CHECK(std::isfinite(amax) && amax >= 0.0f, ErrorCode::INVALID_ARGUMENT, "fp8 scale: amax = ", amax,
             " is not a finite non-negative value");
  return amax == 0.0f ? 1.0f : amax / kE4M3Max;
}

float amax_of(std::span<const float> x, const char* what) {
  float amax = 0.0f;
  for (size_t i = 0; i < x.size(); ++i) {
    NLPF_CHECK(std::isfinite(x[i]), ErrorCode::NUMERIC, what, ": element ", i, " is ", x[i],
               "; an fp8 scale needs finite values");
    amax = std::max(amax, std::fabs(x[i]));
  }
  return amax;
}

void quantize_e4m3(std::span<const float> x, float scale, std::span<uint8_t> q) {
  NLPF_CHECK(x.size() == q.size(), ErrorCode::INVALID_ARGUMENT, "quantize_e4m3: ", x.size(), " values into ",
             q.size(), " codes");
  NLPF_CHECK(std::isfinite(scale) && scale > 0.0f, ErrorCode::INVALID_ARGUMENT, "quantize_e4m3: scale ",
             scale, " is not positive");
  for (size_t i = 0; i < x.size(); ++i) q[i] = f32_to_e4m3(x[i] / scale);
}

void dequantize_e4m3(std::span<const uint8_t> q, float scale, std::span<float> x) {
  NLPF_CHECK(x.size() == q.size(), ErrorCode::INVALID_ARGUMENT, "dequantize_e4m3: ", q.size(), " codes into ",
             x.size(), " values");
  for (size_t i = 0; i < q.size(); ++i) x[i] = e4m3_to_f32(q[i]) * scale;
}

QuantizedWeight quantize_weight_e4m3(std::span<const float> weight, int64_t OC, int64_t C,
                                     Fp8Granularity granularity) {
  NLPF_CHECK(OC > 0 && C > 0 && static_cast<int64_t>(weight.size()) == OC * C, ErrorCode::INVALID_ARGUMENT,
             "quantize_weight_e4m3: ", weight.size(), " values for [", OC, ", ", C, "]");
  QuantizedWeight out;
  out.codes.resize(weight.size());
  if (granularity == Fp8Granularity::PER_TENSOR) {
    out.scales = {e4m3_scale_for_amax(amax_of(weight, "fp8 weight"))};
    quantize_e4m3(weight, out.scales[0], out.codes);
    return out;
  }
  out.scales.resize(static_cast<size_t>(OC));
  for (int64_t o = 0; o < OC; ++o) {
    const auto row = weight.subspan(static_cast<size_t>(o * C), static_cast<size_t>(C));
    out.scales[static_cast<size_t>(o)] = e4m3_scale_for_amax(amax_of(row, "fp8 weight"));
    quantize_e4m3(row, out.scales[static_cast<size_t>(o)],
                  std::span<uint8_t>(out.codes).subspan(static_cast<size_t>(o * C), static_cast<size_t>(C)));
  }
  return out;
}

const char* fp8_weight_scales_name(Fp8Granularity granularity) {
  return granularity == Fp8Granularity::PER_CHANNEL ? "channel" : "tensor";
}

Fp8Granularity parse_fp8_weight_scales(const std::string& name) {
  if (name == "tensor") return Fp8Granularity::PER_TENSOR;
  if (name == "channel") return Fp8Granularity::PER_CHANNEL;
  NLPF_THROW(ErrorCode::INVALID_ARGUMENT, "--fp8-weight-scales ", name,
             ": expected tensor (one scale per weight) or channel (one per output channel)");
}

void AmaxObserver::observe(std::span<const float> x) {
  amax_ = std::max(amax_, amax_of(x, site_.c_str()));
  values_ += static_cast<int64_t>(x.size());
}

}  // namespace nlpf
