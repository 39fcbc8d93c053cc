// Helpers of the op tests (tests/ops, tests/grad): random data from a fixed-seed std::mt19937, f32 tensors
// from double vectors, the elementwise check |a - ref| <= atol + rtol |ref| (NaN/Inf always fail; the first
// mismatches are printed with their indices, with the normalised error over the tensor) and error checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"

namespace nlpf::test {

struct Tolerance {
  double rtol;
  double atol;
};

inline std::vector<double> random_vector(std::mt19937& rng, size_t n, double low = -1.0, double high = 1.0) {
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

inline Tensor f32_tensor(const Shape& shape, const std::vector<double>& values) {
  Tensor t = Tensor::empty(DType::F32, shape);
  EXPECT_EQ(static_cast<size_t>(t.numel()), values.size());
  float* p = t.data<float>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<float>(values[i]);
  return t;
}

inline Tensor i32_tensor(const Shape& shape, const std::vector<int32_t>& values) {
  Tensor t = Tensor::empty(DType::I32, shape);
  EXPECT_EQ(static_cast<size_t>(t.numel()), values.size());
  for (size_t i = 0; i < values.size(); ++i) t.data<int32_t>()[i] = values[i];
  return t;
}

// Values rounded to float and back: the double reference then sees exactly the f32 op's inputs.
inline std::vector<double> round_to_float(std::vector<double> v) {
  for (double& x : v) x = static_cast<float>(x);
  return v;
}

inline std::vector<double> to_double(const Tensor& t) {
  const float* p = t.data<float>();
  return std::vector<double>(p, p + t.numel());
}

template <typename Real>
::testing::AssertionResult all_close(const std::vector<Real>& actual, const std::vector<double>& ref,
                                     Tolerance tol) {
  if (actual.size() != ref.size()) {
    return ::testing::AssertionFailure() << "size " << actual.size() << " != reference size " << ref.size();
  }
  std::ostringstream first;
  int64_t mismatches = 0;
  double diff_sq = 0, ref_sq = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double a = static_cast<double>(actual[i]), r = ref[i];
    const bool ok =
        std::isfinite(a) && std::isfinite(r) && std::abs(a - r) <= tol.atol + tol.rtol * std::abs(r);
    diff_sq += (a - r) * (a - r);
    ref_sq += r * r;
    if (!ok && mismatches++ < 8) first << "\n  [" << i << "] got " << a << ", expected " << r;
  }
  if (mismatches == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << mismatches << " of " << ref.size() << " elements differ (rtol "
                                       << tol.rtol << ", atol " << tol.atol << "), normalised error "
                                       << std::sqrt(diff_sq / std::max(ref_sq, 1e-300)) << ":" << first.str();
}

inline ::testing::AssertionResult all_close(const Tensor& actual, const std::vector<double>& ref,
                                            Tolerance tol) {
  return all_close(to_double(actual), ref, tol);
}

// Runs fn, expecting nlpf::Error with `code` and a message containing every one of `parts`.
inline void expect_error(const std::function<void()>& fn, ErrorCode code,
                         const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(error_code_name(e.code()), std::string(error_code_name(code))) << e.what();
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << part << "' not in: " << e.what();
    }
    return;
  }
  ADD_FAILURE() << "no nlpf::Error thrown";
}

}  // namespace nlpf::test
