// integrate_sample_buffer: exact integrals of piecewise-linear traces, the window's edges, rows that must be
// ignored (other sources, outside the window), and the errors for an empty window or too few samples.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "measure/trace_energy.h"

namespace nlpf {
namespace {

PowerTraceRow sample(double t, double w) {
  PowerTraceRow row;
  row.timestamp_s = t;
  row.power_w = w;
  row.source = "nvml_sample_buffer";
  return row;
}

TEST(MeasureTraceEnergy, TrapezoidOverALinearRampIsExact) {
  // P(t) = 100 + 50 t sampled every 20 ms from 0 to 2 s, given out of order, plus rows to ignore.
  std::vector<PowerTraceRow> rows;
  for (int i = 100; i >= 0; --i) rows.push_back(sample(0.02 * i, 100.0 + 50.0 * 0.02 * i));
  PowerTraceRow counter_row;
  counter_row.timestamp_s = 1.0;
  counter_row.energy_j = 5.0;
  counter_row.source = "nvml_counter";  // no power: ignored
  rows.push_back(counter_row);
  PowerTraceRow instant = sample(1.01, 1e6);
  instant.source = "nvml_power_instant";  // not from the buffer: ignored
  rows.push_back(instant);

  const TraceEnergy e = integrate_sample_buffer(rows, 0.0, 2.0);
  EXPECT_EQ(e.samples, 101);
  EXPECT_NEAR(e.inner_energy_j, 100.0 * 2.0 + 25.0 * 4.0, 1e-9);
  EXPECT_NEAR(e.energy_j, e.inner_energy_j, 1e-9);  // samples at both edges: nothing to extend
  EXPECT_NEAR(e.max_gap_s, 0.02, 1e-12);
  EXPECT_NEAR(e.median_interval_s, 0.02, 1e-12);
  EXPECT_DOUBLE_EQ(e.first_sample_s, 0.0);
  EXPECT_DOUBLE_EQ(e.last_sample_s, 2.0);
}

TEST(MeasureTraceEnergy, WindowKeepsInsideSamplesAndExtendsTheEdges) {
  // 200 W from 0 to 1 s, 400 W from 1.02 s on; the window [0.5, 1.5] cuts through the samples.
  std::vector<PowerTraceRow> rows;
  for (int i = 0; i <= 100; ++i) rows.push_back(sample(0.02 * i + 0.005, i <= 50 ? 200.0 : 400.0));
  const TraceEnergy e = integrate_sample_buffer(rows, 0.5, 1.5);
  // Inside: 0.505 .. 1.485 s, 50 samples; the step costs one trapezoid at 300 W.
  EXPECT_EQ(e.samples, 50);
  EXPECT_NEAR(e.first_sample_s, 0.505, 1e-12);
  EXPECT_NEAR(e.last_sample_s, 1.485, 1e-12);
  const double inner = 200.0 * (1.005 - 0.505) + 300.0 * 0.02 + 400.0 * (1.485 - 1.025);
  EXPECT_NEAR(e.inner_energy_j, inner, 1e-9);
  EXPECT_NEAR(e.energy_j, inner + 200.0 * 0.005 + 400.0 * 0.015, 1e-9);
}

TEST(MeasureTraceEnergy, ALostDrainShowsAsAGap) {
  std::vector<PowerTraceRow> rows;
  for (int i = 0; i <= 100; ++i)
    if (i < 40 || i > 60) rows.push_back(sample(0.02 * i, 300.0));
  const TraceEnergy e = integrate_sample_buffer(rows, 0.0, 2.0);
  EXPECT_NEAR(e.max_gap_s, 0.44, 1e-12);
  EXPECT_NEAR(e.median_interval_s, 0.02, 1e-12);
  EXPECT_NEAR(e.energy_j, 600.0, 1e-9);  // constant power: the gap's trapezoid is still exact
}

TEST(MeasureTraceEnergy, ErrorsNameTheWindow) {
  const std::vector<PowerTraceRow> rows = {sample(0.0, 100.0), sample(1.0, 100.0), sample(3.0, 100.0)};
  const auto expect_error = [&](double t0, double t1, ErrorCode code, const std::string& needle) {
    try {
      integrate_sample_buffer(rows, t0, t1);
      FAIL() << "no error for [" << t0 << ", " << t1 << "]";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(2.0, 2.0, ErrorCode::INVALID_ARGUMENT, "power trace window [2, 2] s is empty");
  expect_error(0.5, 2.5, ErrorCode::INVALID_ARGUMENT,
               "power trace window [0.5, 2.5] s holds 1 sample-buffer row(s); integrating needs at least 2");
  std::vector<PowerTraceRow> bad = rows;
  bad.push_back(sample(0.5, std::numeric_limits<double>::infinity()));
  try {
    integrate_sample_buffer(bad, 0.0, 1.0);
    FAIL() << "an infinite power was integrated";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::NUMERIC);
    EXPECT_NE(std::string(e.what()).find("t = 0.5 s"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
