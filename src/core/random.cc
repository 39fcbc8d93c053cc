// Philox4x32-10 and the uniform / normal streams built on it (layout in random.h).
#include "core/random.h"

#include <cmath>
#include <vector>

namespace nlpf {
namespace {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr int kPhiloxRounds = 10;

inline PhiloxCounter philox_round(const PhiloxCounter& c, const PhiloxKey& k) {
  const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c[0];
  const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c[2];
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
}

// Writes n values produced by value(index) into a float tensor of any float dtype.
template <typename ValueFn>
void fill_float_tensor(Tensor& tensor, const char* what, ValueFn value) {
  NLPF_CHECK(dtype_is_float(tensor.dtype()), ErrorCode::INVALID_ARGUMENT, what, ": tensor of dtype ",
             dtype_name(tensor.dtype()), " is not a float tensor");
  const int64_t n = tensor.numel();
  if (tensor.dtype() == DType::F32) {
    float* out = tensor.data<float>();
    for (int64_t i = 0; i < n; ++i) out[i] = value(static_cast<uint64_t>(i));
    return;
  }
  std::vector<float> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = value(static_cast<uint64_t>(i));
  convert_float_buffer(values.data(), DType::F32, tensor.raw_data(), tensor.dtype(), n);
}

}  // namespace

PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
  for (int round = 0; round < kPhiloxRounds; ++round) {
    if (round > 0) {
      key[0] += kPhiloxW0;
      key[1] += kPhiloxW1;
    }
    counter = philox_round(counter, key);
  }
  return counter;
}

PhiloxCounter philox_block(uint64_t seed, uint64_t block, uint64_t subsequence) {
  return philox4x32_10({static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                        static_cast<uint32_t>(subsequence), static_cast<uint32_t>(subsequence >> 32)},
                       {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
}

float philox_uniform(uint64_t seed, uint64_t index) {
  return uint32_to_uniform(philox_block(seed, index / 4)[index % 4]);
}

float philox_normal(uint64_t seed, uint64_t index) {
  const PhiloxCounter x = philox_block(seed, index / 4);
  const int lane = static_cast<int>(index % 4);
  const int pair = lane & ~1;  // lanes 0-1 use x0, x1; lanes 2-3 use x2, x3
  const double u_radius = (static_cast<double>(x[pair] >> 8) + 1.0) * (1.0 / 16777216.0);
  const double u_angle = static_cast<double>(x[pair + 1] >> 8) * (1.0 / 16777216.0);
  const double radius = std::sqrt(-2.0 * std::log(u_radius));
  const double angle = 2.0 * M_PI * u_angle;
  return static_cast<float>((lane & 1) ? radius * std::sin(angle) : radius * std::cos(angle));
}

void fill_normal(Tensor& tensor, float mean, float std, uint64_t seed, uint64_t offset) {
  fill_float_tensor(tensor, "fill_normal", [&](uint64_t i) {
    return static_cast<float>(mean + static_cast<double>(std) * philox_normal(seed, offset + i));
  });
}

void fill_uniform(Tensor& tensor, float low, float high, uint64_t seed, uint64_t offset) {
  NLPF_CHECK(low <= high, ErrorCode::INVALID_ARGUMENT, "fill_uniform: low ", low, " > high ", high);
  fill_float_tensor(tensor, "fill_uniform", [&](uint64_t i) {
    return static_cast<float>(low + (static_cast<double>(high) - low) * philox_uniform(seed, offset + i));
  });
}

}  // namespace nlpf
