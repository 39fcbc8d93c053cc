// The pictures of a run directory, drawn from its pareto rows (so `nlpf plot` redraws exactly what a run
// drew): energy (or latency) vs accuracy with the frontier, and energy vs latency per sweep (DESIGN §3).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "experiment/run_files.h"

namespace nlpf {

struct RunPlotTitle {
  std::string model;   // model folder name
  std::string task;    // sst2
  std::string device;  // GPU name or "cpu"
};

// Cost (frontier_cost) vs accuracy with the frontier; returns why it was skipped, nullopt when written.
std::optional<std::string> draw_accuracy_plot(const std::filesystem::path& path,
                                              const std::vector<ParetoRow>& rows,
                                              const std::vector<std::optional<bool>>& on_frontier,
                                              const std::string& frontier_cost, const RunPlotTitle& title);

// Energy per example vs latency_axis(rows), frontier over both (lower is better on each). Where the latency
// is the p99 of a batch and no row has an energy reading, the x axis is the latency per example instead (what
// a batch size buys against what a request waits); otherwise skipped when no row has an energy reading.
std::optional<std::string> draw_energy_latency_plot(const std::filesystem::path& path,
                                                    const std::vector<ParetoRow>& rows,
                                                    const RunPlotTitle& title);

// The latency the energy-latency plot shows: "latency_p99_ms" (per batch: what one request waits) where the
// rows take more than one batch size (a batch_size or eval_batch_size parameter), since a larger batch
// lowers the cost per example by making every request wait longer; else "average_latency_per_example_ms".
std::string latency_axis(const std::vector<ParetoRow>& rows);

// The point label a plot shows: the row's parameters ("len 48", "6 layers", "fp16", "bucketed", "bs 64",
// joined by spaces), else the row label.
std::string plot_label(const ParetoRow& row);

}  // namespace nlpf
