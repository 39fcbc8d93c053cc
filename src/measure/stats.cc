// Statistics: exact binomial coverage for the median interval, numpy-style percentiles.
#include "measure/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace nlpf {

namespace {

void check_values(const std::vector<double>& values, size_t min_count, const char* what) {
  NLPF_CHECK(values.size() >= min_count, ErrorCode::INVALID_ARGUMENT, what, ": needs at least ", min_count,
             " value(s), got ", values.size());
  for (size_t i = 0; i < values.size(); ++i)
    NLPF_CHECK(std::isfinite(values[i]), ErrorCode::INVALID_ARGUMENT, what, ": value ", i, " is not finite (",
               values[i], ")");
}

// P(Binomial(n, 1/2) <= k), summed in doubles (n is a trial count: small).
double binomial_half_cdf(int n, int k) {
  double term = std::ldexp(1.0, -n);  // C(n, 0) / 2^n
  double sum = 0.0;
  for (int i = 0; i <= k; ++i) {
    sum += term;
    term = term * (n - i) / (i + 1);
  }
  return sum;
}

}  // namespace

double mean(const std::vector<double>& values) {
  check_values(values, 1, "mean");
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double median(std::vector<double> values) {
  check_values(values, 1, "median");
  return percentile(std::move(values), 50.0);
}

double sample_stddev(const std::vector<double>& values) {
  check_values(values, 2, "sample standard deviation");
  const double m = mean(values);
  double sum_squares = 0.0;
  for (double v : values) sum_squares += (v - m) * (v - m);
  return std::sqrt(sum_squares / static_cast<double>(values.size() - 1));
}

double coefficient_of_variation(const std::vector<double>& values) {
  check_values(values, 2, "coefficient of variation");
  const double m = mean(values);
  NLPF_CHECK(m != 0.0, ErrorCode::INVALID_ARGUMENT, "coefficient of variation: the mean is 0");
  return sample_stddev(values) / std::fabs(m);
}

double percentile(std::vector<double> values, double p) {
  check_values(values, 1, "percentile");
  NLPF_CHECK(p >= 0.0 && p <= 100.0, ErrorCode::INVALID_ARGUMENT, "percentile: p must be in [0, 100], got ",
             p);
  std::sort(values.begin(), values.end());
  // numpy 'linear': position h = (n - 1) p / 100 between ranks floor(h) and floor(h) + 1.
  const double h = static_cast<double>(values.size() - 1) * p / 100.0;
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= values.size()) return values.back();
  return values[lo] + (h - static_cast<double>(lo)) * (values[lo + 1] - values[lo]);
}

std::optional<MedianInterval> median_confidence_interval(std::vector<double> values, double level) {
  NLPF_CHECK(level > 0.0 && level < 1.0, ErrorCode::INVALID_ARGUMENT,
             "median confidence interval: level must be in (0, 1), got ", level);
  check_values(values, 0, "median confidence interval");
  if (values.size() < 2) return std::nullopt;
  std::sort(values.begin(), values.end());
  const int n = static_cast<int>(values.size());
  // The widest interval (k = 1) is the fallback; move inwards while coverage stays >= level.
  int best_k = 1;
  for (int k = 2; k <= n / 2; ++k) {
    if (1.0 - 2.0 * binomial_half_cdf(n, k - 1) >= level)
      best_k = k;
    else
      break;
  }
  MedianInterval out;
  out.low = values[static_cast<size_t>(best_k - 1)];
  out.high = values[static_cast<size_t>(n - best_k)];
  out.confidence = 1.0 - 2.0 * binomial_half_cdf(n, best_k - 1);
  return out;
}

}  // namespace nlpf
