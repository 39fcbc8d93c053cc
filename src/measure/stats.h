// Statistics across trials and batches. The interval around the median is a distribution-free
// order-statistic interval: trial energies are few (5) and skewed by throttling or background load, so a
// normal-theory t-interval of the mean would claim more than the data supports. With n trials the interval
// (x_(k), x_(n-k+1)) holds the true median with probability 1 - 2·P(Binomial(n, 1/2) <= k-1); for n <= 5 no
// k reaches 95% and (min, max) is reported with its achieved level (93.75% at n = 5). The level travels with
// the interval, so a reader never mistakes 93.75% for 95%.
#pragma once

#include <optional>
#include <vector>

namespace nlpf {

// All throw Error(INVALID_ARGUMENT) on empty input (or fewer than 2 values where noted) and on NaN/Inf.
double mean(const std::vector<double>& values);
double median(std::vector<double> values);
// Sample standard deviation (n - 1 in the denominator); needs >= 2 values.
double sample_stddev(const std::vector<double>& values);
// sample_stddev / |mean|; needs >= 2 values and a nonzero mean.
double coefficient_of_variation(const std::vector<double>& values);
// Percentile p in [0, 100] with linear interpolation between closest ranks (numpy.percentile's default).
double percentile(std::vector<double> values, double p);

struct MedianInterval {
  double low = 0.0;
  double high = 0.0;
  double confidence = 0.0;  // achieved coverage, >= the requested level when the sample is large enough
};
// Order-statistic confidence interval of the median at `level` (see the top of this file); nullopt for n < 2.
std::optional<MedianInterval> median_confidence_interval(std::vector<double> values, double level = 0.95);

}  // namespace nlpf
