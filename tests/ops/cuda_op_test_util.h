// Helpers of the CUDA-vs-CPU op tests (tests/ops/*_cuda_test.cc): a fixture that skips where the build has
// no CUDA or no device is visible, random host tensors, device tensors poisoned with NaN (so an element no
// kernel writes fails the comparison), views at an odd float offset (the kernels' unaligned paths), host
// values of device tensors, and a tolerance relative to the largest |ref| for outputs that are sums of many
// terms (a GEMM's summation order differs from OpenBLAS's, so an output that cancels to near 0 keeps an
// absolute error of the size of its terms). Only the CUDA-free op layer is used, so the tests build anywhere.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <sstream>
#include <vector>

#include "backend/context.h"
#include "backend/device.h"
#include "core/fp8.h"
#include "ops/op_test_util.h"

namespace nlpf::test {

// STYLE "Tests": fp32 1e-5 for an op; atol 1e-6 for values near 0.
constexpr Tolerance kCudaF32{1e-5, 1e-6};

inline double largest_abs(const std::vector<double>& v) {
  double m = 0;
  for (const double x : v) m = std::max(m, std::abs(x));
  return m;
}

// rtol = tol, atol = tol max |ref|.
inline Tolerance scaled_tolerance(double tol, const std::vector<double>& ref) {
  return Tolerance{tol, tol * std::max(largest_abs(ref), 1e-30)};
}

class CudaOpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
    if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
    ctx_ = make_execution_context(Device{DeviceType::CUDA, 0});
  }
  ExecutionContext& gpu() { return *ctx_; }

  // A device f32 tensor of `shape` whose every byte is 0xFF (NaN), `float_offset` floats into its buffer: an
  // offset of 1 makes the view 4 but not 16-byte aligned.
  Tensor poisoned(const Shape& shape, int64_t float_offset = 0) {
    Tensor host = Tensor::empty(DType::F32, {shape_numel(shape) + float_offset});
    std::memset(host.raw_data(), 0xFF, host.nbytes());
    return to_device(gpu(), host).view(shape, static_cast<size_t>(float_offset) * sizeof(float));
  }
  // A device tensor of any dtype whose every byte is 0xFF: NaN in f32, -1 in i32.
  Tensor poisoned(const Shape& shape, DType dtype) {
    Tensor host = Tensor::empty(dtype, shape);
    std::memset(host.raw_data(), 0xFF, host.nbytes());
    return to_device(gpu(), host);
  }
  // A device copy of a host tensor (any dtype; f32 `float_offset` floats into its buffer, the rest NaN).
  Tensor device(const Tensor& host, int64_t float_offset = 0) {
    Tensor out =
        float_offset == 0 ? poisoned(host.shape(), host.dtype()) : poisoned(host.shape(), float_offset);
    copy_tensor(gpu(), out, host);
    return out;
  }
  std::vector<double> values(const Tensor& device_tensor) { return to_double(to_host(gpu(), device_tensor)); }

  std::unique_ptr<ExecutionContext> ctx_;
};

inline Tensor random_tensor(std::mt19937& rng, const Shape& shape, double low = -1.0, double high = 1.0) {
  return f32_tensor(shape, random_vector(rng, static_cast<size_t>(shape_numel(shape)), low, high));
}

inline Tensor random_ids(std::mt19937& rng, const Shape& shape, int32_t end) {
  std::uniform_int_distribution<int32_t> dist(0, end - 1);
  Tensor t = Tensor::empty(DType::I32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int32_t>()[i] = dist(rng);
  return t;
}

// Mask [B,T]: sequence 0 with random holes (its first token kept), 1 a prefix of about a third, the last all
// padding, further ones full.
inline Tensor ragged_mask(std::mt19937& rng, int64_t B, int64_t T) {
  std::bernoulli_distribution kept(0.7);
  Tensor mask = Tensor::empty(DType::I32, {B, T});
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      int32_t token = 1;
      if (b == B - 1) {
        token = 0;
      } else if (b == 0) {
        token = t == 0 || kept(rng) ? 1 : 0;
      } else if (b == 1) {
        token = t < std::max<int64_t>(1, T / 3) ? 1 : 0;
      }
      mask.data<int32_t>()[b * T + t] = token;
    }
  }
  return mask;
}

// A host copy of a host tensor, for a CPU reference that updates in place what the GPU run also starts from.
// E4M3 codes of normal(0, spread) values and their per-tensor scale.
inline Tensor codes_of(std::mt19937& rng, const Shape& shape, float spread, float* scale) {
  const int64_t n = shape_numel(shape);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = normal(rng);
  *scale = e4m3_scale_for_amax(amax_of(x, "test"));
  Tensor codes = Tensor::empty(DType::F8E4M3, shape);
  quantize_e4m3(x, *scale,
                std::span<uint8_t>(static_cast<uint8_t*>(codes.raw_data()), static_cast<size_t>(n)));
  return codes;
}

inline Tensor host_copy(const Tensor& t) {
  Tensor copy = Tensor::empty(t.dtype(), t.shape());
  std::memcpy(copy.raw_data(), t.raw_data(), t.nbytes());
  return copy;
}

// Whether two float vectors are equal bit for bit; the first differences are printed with their indices.
inline ::testing::AssertionResult bit_identical(const Tensor& actual, const Tensor& expected) {
  if (actual.numel() != expected.numel()) {
    return ::testing::AssertionFailure() << "sizes " << actual.numel() << " != " << expected.numel();
  }
  int64_t differ = 0;
  std::ostringstream first;
  for (int64_t i = 0; i < actual.numel(); ++i) {
    uint32_t a, e;
    std::memcpy(&a, actual.data<float>() + i, sizeof a);
    std::memcpy(&e, expected.data<float>() + i, sizeof e);
    if (a != e && differ++ < 8) {
      first << "\n  [" << i << "] got " << actual.data<float>()[i] << ", expected "
            << expected.data<float>()[i];
    }
  }
  if (differ == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differ << " of " << actual.numel() << " differ:" << first.str();
}

}  // namespace nlpf::test
