// Statistics against known values: percentiles checked with numpy.percentile (linear, the default), sample
// standard deviation with numpy.std(ddof=1), and the exact binomial coverage of the median interval.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "core/error.h"
#include "measure/stats.h"

namespace nlpf {
namespace {

TEST(MeasureStats, PercentilesMatchNumpy) {
  const std::vector<double> x = {3.1, 0.5, 7.25, 2.0, 9.75, 4.4, 1.3};
  // python3 -c "import numpy as np; print(np.percentile([3.1,0.5,7.25,2.0,9.75,4.4,1.3], p))"
  EXPECT_DOUBLE_EQ(percentile(x, 0.0), 0.5);
  EXPECT_NEAR(percentile(x, 10.0), 0.98, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(x, 50.0), 3.1);
  EXPECT_NEAR(percentile(x, 90.0), 8.25, 1e-12);
  EXPECT_NEAR(percentile(x, 99.0), 9.6, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(x, 100.0), 9.75);
  EXPECT_NEAR(percentile(x, 33.3), 1.9986, 1e-12);
  EXPECT_NEAR(percentile({5.0, 1.0}, 90.0), 4.6, 1e-12);
  EXPECT_DOUBLE_EQ(percentile({42.0}, 99.0), 42.0);
}

TEST(MeasureStats, MedianMeanStddevCv) {
  const std::vector<double> y = {0.2315, 0.2298, 0.2341, 0.2307, 0.2322};
  EXPECT_DOUBLE_EQ(median(y), 0.2315);
  EXPECT_DOUBLE_EQ(median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_NEAR(mean(y), 0.23166, 1e-15);
  EXPECT_NEAR(sample_stddev(y), 0.001631870092868915, 1e-15);
  EXPECT_NEAR(coefficient_of_variation(y), 0.00704424627846376, 1e-14);
  EXPECT_DOUBLE_EQ(sample_stddev({2.0, 4.0}), std::sqrt(2.0));
}

TEST(MeasureStats, MedianIntervalFiveTrialsIsMinMaxAt9375) {
  const auto ci = median_confidence_interval({0.2315, 0.2298, 0.2341, 0.2307, 0.2322});
  ASSERT_TRUE(ci.has_value());
  EXPECT_DOUBLE_EQ(ci->low, 0.2298);
  EXPECT_DOUBLE_EQ(ci->high, 0.2341);
  EXPECT_DOUBLE_EQ(ci->confidence, 0.9375);  // 1 - 2/32
}

TEST(MeasureStats, MedianIntervalNarrowsWithMoreTrials) {
  std::vector<double> v;
  for (int i = 1; i <= 20; ++i) v.push_back(static_cast<double>(i));
  // n = 20: k = 6 gives 1 - 2 P(B <= 5) = 0.9586 >= 0.95; k = 7 gives 0.8847.
  const auto ci = median_confidence_interval(v, 0.95);
  ASSERT_TRUE(ci.has_value());
  EXPECT_DOUBLE_EQ(ci->low, 6.0);
  EXPECT_DOUBLE_EQ(ci->high, 15.0);
  EXPECT_NEAR(ci->confidence, 1.0 - 2.0 * 21700.0 / 1048576.0, 1e-12);
  // n = 6: (min, max) at 1 - 2/64.
  const auto six = median_confidence_interval({6, 5, 4, 3, 2, 1});
  ASSERT_TRUE(six.has_value());
  EXPECT_DOUBLE_EQ(six->low, 1.0);
  EXPECT_DOUBLE_EQ(six->high, 6.0);
  EXPECT_DOUBLE_EQ(six->confidence, 0.96875);
  EXPECT_FALSE(median_confidence_interval({1.0}).has_value());
}

void expect_invalid(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    FAIL() << "expected Error(INVALID_ARGUMENT) mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(MeasureStats, BadInputsAreRejectedWithTheirName) {
  expect_invalid([] { median({}); }, "median");
  expect_invalid([] { sample_stddev({1.0}); }, "at least 2");
  expect_invalid([] { percentile({1.0, 2.0}, 101.0); }, "[0, 100]");
  expect_invalid([] { mean({1.0, std::numeric_limits<double>::quiet_NaN()}); }, "value 1 is not finite");
  expect_invalid([] { coefficient_of_variation({-1.0, 1.0}); }, "mean is 0");
  expect_invalid([] { median_confidence_interval({1.0, 2.0}, 1.5); }, "level");
}

}  // namespace
}  // namespace nlpf
