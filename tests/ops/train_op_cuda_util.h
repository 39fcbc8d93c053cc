// Helpers of the CUDA-vs-CPU tests of the training ops (linear, attention, cross_entropy, adamw,
// clip_grad_norm; tests/ops/<op>_cuda_test.cc): a fixture that skips with the reason where the build has no
// CUDA or no GPU is visible and otherwise holds a context on cuda:0, device tensors poisoned with NaN (an
// element no kernel writes fails the comparison), host read-back, and a tolerance relative to the largest
// |ref| for outputs that are sums of many terms (a GEMM's summation order differs from OpenBLAS's, so an
// output that cancels to near 0 keeps an absolute error of the size of its terms). CUDA-free: builds
// anywhere.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "backend/context.h"
#include "backend/device.h"
#include "ops/op_test_util.h"

namespace nlpf::test {

inline double largest_abs(const std::vector<double>& v) {
  double m = 0;
  for (const double x : v) m = std::max(m, std::abs(x));
  return m;
}

// rtol = tol, atol = tol max |ref|.
inline Tolerance scaled_tolerance(double tol, const std::vector<double>& ref) {
  return Tolerance{tol, tol * std::max(largest_abs(ref), 1e-30)};
}

class TrainOpCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_built()) GTEST_SKIP() << "built without CUDA";
    if (cuda_devices().empty()) GTEST_SKIP() << "no CUDA device visible";
    ctx_ = make_execution_context(Device{DeviceType::CUDA, 0});
  }
  ExecutionContext& gpu() { return *ctx_; }

  // A device tensor whose every byte is 0xFF: NaN in f32, -1 in i32.
  Tensor poisoned(const Shape& shape, DType dtype = DType::F32) {
    Tensor host = Tensor::empty(dtype, shape);
    std::memset(host.raw_data(), 0xFF, host.nbytes());
    return to_device(gpu(), host);
  }
  Tensor device(const Tensor& host) { return to_device(gpu(), host); }
  std::vector<double> values(const Tensor& device_tensor) { return to_double(to_host(gpu(), device_tensor)); }

  std::unique_ptr<ExecutionContext> ctx_;
};

inline Tensor random_f32(std::mt19937& rng, const Shape& shape, double low = -1.0, double high = 1.0) {
  return f32_tensor(shape, random_vector(rng, static_cast<size_t>(shape_numel(shape)), low, high));
}

// A host copy of a host tensor, for a CPU reference that updates in place what the GPU run also starts from.
inline Tensor host_copy(const Tensor& t) {
  Tensor copy = Tensor::empty(t.dtype(), t.shape());
  std::memcpy(copy.raw_data(), t.raw_data(), t.nbytes());
  return copy;
}

}  // namespace nlpf::test
