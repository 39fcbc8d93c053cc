// quantize_e4m3_forward on the GPU (the hardware's cvt with saturation) against the CPU (core/fp8.h):
// identical codes for every f32 bit pattern class that matters — all 256 decoded codes times the scale, their
// midpoints (the ties), values past +-448, zeros, NaN, subnormals — and for random bf16/f16 activations; the
// scale read from device memory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/fp8.h"
#include "ops/cuda_op_test_util.h"
#include "ops/quantize.h"

namespace nlpf::test {
namespace {

class QuantizeCuda : public CudaOpTest {
 protected:
  // Codes of the CPU and of the GPU for one host tensor x.
  void expect_same_codes(const Tensor& x, float scale) {
    const Tensor s = f32_tensor({1}, {scale});
    Tensor cpu = Tensor::empty(DType::F8E4M3, x.shape());
    ops::quantize_e4m3_forward(cpu_context(), cpu, x, s);
    Tensor gpu_codes = to_device(gpu(), Tensor::zeros(DType::F8E4M3, x.shape()));
    ops::quantize_e4m3_forward(gpu(), gpu_codes, device(x), device(s));
    const Tensor back = to_host(gpu(), gpu_codes);
    const auto* a = static_cast<const uint8_t*>(cpu.raw_data());
    const auto* b = static_cast<const uint8_t*>(back.raw_data());
    int differ = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const bool both_nan = (a[i] & 0x7F) == 0x7F && (b[i] & 0x7F) == 0x7F;  // NaN's sign is not specified
      if (a[i] != b[i] && !both_nan && differ++ < 8) {
        ADD_FAILURE() << dtype_name(x.dtype()) << " x[" << i << "] = " << x.to(DType::F32).data<float>()[i]
                      << ": cpu code " << int(a[i]) << ", gpu code " << int(b[i]);
      }
    }
    EXPECT_EQ(differ, 0);
  }
};

TEST_F(QuantizeCuda, HostEncoderEqualsTheHardwareConversion) {
  std::vector<float> v;
  for (int code = 0; code < 256; ++code) {
    const double a = e4m3_to_f32(static_cast<uint8_t>(code));
    if (std::isnan(a)) continue;
    v.push_back(static_cast<float>(a));
    if (code != 0x7E && code != 0xFE) {  // the midpoint to the next code of the same sign: a tie
      const double b = e4m3_to_f32(static_cast<uint8_t>(code + 1));
      if (!std::isnan(b)) v.push_back(static_cast<float>((a + b) / 2));
    }
  }
  for (float x : {449.0f, 464.0f, 500.0f, 1e30f, -1e30f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::nanf(""), 0.0f, -0.0f, 1e-30f, -1e-30f,
                  std::ldexp(1.0f, -10), 3 * std::ldexp(1.0f, -10), 0.0155f}) {
    v.push_back(x);
  }
  for (const float scale : {1.0f, 0.015625f, 3.7f}) {
    std::vector<float> scaled;
    for (float x : v) scaled.push_back(x * scale);
    expect_same_codes(
        f32_tensor({static_cast<int64_t>(scaled.size())}, std::vector<double>(scaled.begin(), scaled.end())),
        scale);
  }
}

TEST_F(QuantizeCuda, RandomActivationsInEveryDtype) {
  std::mt19937 rng(12);
  for (const DType dtype : {DType::F32, DType::BF16, DType::F16}) {
    const Tensor x = random_tensor(rng, {37, 129}, -20.0, 20.0).to(dtype);
    expect_same_codes(x, 20.0f / 448.0f);
    expect_same_codes(x, 0.01f);  // most values saturate
  }
}

}  // namespace
}  // namespace nlpf::test
