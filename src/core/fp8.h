// FP8 E4M3 (the OCP "E4M3FN" format of Hopper and Ada tensor cores): sign, 4 exponent bits (bias 7), 3
// mantissa bits, no infinities, NaN = S.1111.111; largest finite 448, smallest normal 2^-6, smallest
// subnormal 2^-9. Conversions from float round to nearest even and saturate (NVIDIA's __NV_SATFINITE: beyond
// +-448, including
// +-inf, becomes +-448; NaN stays NaN). Scales follow cuBLASLt's convention: a tensor x is stored as
// q = e4m3(x / scale) and read back as decode(q) * scale, scale = amax / 448, so its largest |value| maps to
// the largest code. Host code: weights are quantised here, and activation scales calibrated (AmaxObserver).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace nlpf {

constexpr float kE4M3Max = 448.0f;

float e4m3_to_f32(uint8_t code);
uint8_t f32_to_e4m3(float x);

// scale = amax / 448 (1 for an all-zero tensor, so that it stays exactly 0). INVALID_ARGUMENT for a negative
// or non-finite amax.
float e4m3_scale_for_amax(float amax);

// The largest |x| over `x`; NUMERIC naming `what` when a value is not finite (a scale from it would be).
float amax_of(std::span<const float> x, const char* what);

// q[i] = e4m3(x[i] / scale) for n elements.
void quantize_e4m3(std::span<const float> x, float scale, std::span<uint8_t> q);
void dequantize_e4m3(std::span<const uint8_t> q, float scale, std::span<float> x);

// A weight [OC, C] (row-major, nn.Linear's layout) quantised with one scale per output channel (row), or one
// for the whole tensor.
struct QuantizedWeight {
  std::vector<uint8_t> codes;  // [OC, C]
  std::vector<float> scales;   // [OC] per channel, or [1] per tensor
};
enum class Fp8Granularity { PER_TENSOR, PER_CHANNEL };
// The command line's spelling of the weight-scale granularity (--fp8-weight-scales): "tensor" or "channel";
// parse throws INVALID_ARGUMENT naming the option for anything else.
const char* fp8_weight_scales_name(Fp8Granularity granularity);
Fp8Granularity parse_fp8_weight_scales(const std::string& name);
QuantizedWeight quantize_weight_e4m3(std::span<const float> weight, int64_t OC, int64_t C,
                                     Fp8Granularity granularity);

// Calibration of one activation site: the running max |x| over every batch observed (order-independent, so
// deterministic for a given set of batches). The rule (docs/ENGINE.md): scale = amax over the calibration
// batches / 448; a larger value at inference saturates at +-448 scale.
class AmaxObserver {
 public:
  explicit AmaxObserver(std::string site) : site_(std::move(site)) {}
  void observe(std::span<const float> x);
  float amax() const { return amax_; }
  int64_t values_seen() const { return values_; }
  float scale() const { return e4m3_scale_for_amax(amax_); }

 private:
  std::string site_;
  float amax_ = 0.0f;
  int64_t values_ = 0;
};

}  // namespace nlpf
