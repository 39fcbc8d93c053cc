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

// Energy per example vs latency per example, frontier over both (lower is better on each); skipped when
// no row has an energy reading.
std::optional<std::string> draw_energy_latency_plot(const std::filesystem::path& path,
                                                    const std::vector<ParetoRow>& rows,
                                                    const RunPlotTitle& title);

// The point label a plot shows: the row's parameters ("len 48", "6 layers", "fp16", joined by spaces),
// else the row label.
std::string plot_label(const ParetoRow& row);

}  // namespace nlpf
