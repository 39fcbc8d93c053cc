// Central finite-difference gradient checks in double for the CPU kernels (tests/grad): the scalar loss is
// a fixed random projection of the op's outputs, sum(out * r), so dout = r in the backward pass.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "ops/op_test_util.h"

namespace nlpf::test {

struct GradTolerance {
  double step = 1e-6;
  double rtol = 1e-6;
  double atol = 1e-8;
};

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

inline std::vector<double> nan_vector(size_t n) {
  return std::vector<double>(n, std::numeric_limits<double>::quiet_NaN());
}

inline std::vector<double> subtract(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

// Perturbs each x[i] by +-step, recomputing loss(), and compares (L+ - L-) / 2 step with analytic[i].
inline void expect_gradient(const std::string& name, std::vector<double>& x,
                            const std::vector<double>& analytic, const std::function<double()>& loss,
                            GradTolerance tol = {}) {
  ASSERT_EQ(x.size(), analytic.size()) << name;
  std::vector<double> numeric(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + tol.step;
    const double plus = loss();
    x[i] = saved - tol.step;
    const double minus = loss();
    x[i] = saved;
    numeric[i] = (plus - minus) / (2 * tol.step);
  }
  EXPECT_TRUE(all_close(analytic, numeric, Tolerance{tol.rtol, tol.atol})) << "gradient of " << name;
}

}  // namespace nlpf::test
