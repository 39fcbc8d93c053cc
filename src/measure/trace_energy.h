// Energy from a power trace's driver-buffer samples (NVML TOTAL_POWER_SAMPLES, ~20 ms apart), integrated by
// the trapezoid rule over a window of the sampler's timeline. DESIGN §6 takes energy from the counter; this
// integral exists to cross-check the counter (bench/gpu_measure_validation.cu) and to explain a trace.
#pragma once

#include <cstdint>
#include <vector>

#include "measure/power_sampler.h"

namespace nlpf {

struct TraceEnergy {
  // Trapezoids between consecutive samples inside [t0, t1], plus the first and last of them held constant
  // out to t0 and t1, so that the integral spans the same window as a counter delta over [t0, t1].
  double energy_j = 0.0;
  // The trapezoids alone (first to last sample inside the window).
  double inner_energy_j = 0.0;
  int64_t samples = 0;
  double first_sample_s = 0.0;
  double last_sample_s = 0.0;
  double max_gap_s = 0.0;  // the widest spacing of consecutive samples: a lost drain shows here
  double median_interval_s = 0.0;
};

// Uses only rows whose source ends in "_sample_buffer" and whose timestamp lies in [t0_s, t1_s] (rows in
// any order). Throws Error(INVALID_ARGUMENT) naming the window when t1_s <= t0_s or fewer than two such rows
// lie inside it, Error(NUMERIC) for a non-finite power.
TraceEnergy integrate_sample_buffer(const std::vector<PowerTraceRow>& rows, double t0_s, double t1_s);

}  // namespace nlpf
