// `nlpf frontier RUN_DIR...` merges finished runs of one task on one device into one pareto.csv with the
// frontier recomputed over every point; `nlpf plot RUN_DIR` redraws a run's pictures from its pareto.csv
// and run.json (e.g. on a machine with PLplot, for runs made where there was none).
#pragma once

#include <ctime>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace nlpf {

struct FrontierSettings {
  std::vector<std::filesystem::path> run_directories;
  std::string runs_dir = "runs";
  std::ostream* out = nullptr;  // nullptr: std::cout
  bool quiet = false;           // only skipped plots and the run directory are printed
};

// Writes runs/<timestamp>_frontier/ (pareto.csv with a source_run column, and a padding column where the
// runs' evaluation paddings differ (from each run's config.padding), energy_accuracy_frontier.png,
// energy_latency_frontier.png, run.json naming the sources) and returns its path. Errors: IO for a missing
// run directory or file; INVALID_ARGUMENT naming the run when tasks or devices differ, when a run is not
// finished (no run.json) or when fewer than one run is given.
std::filesystem::path merge_frontier(const FrontierSettings& settings);

// Redraws the plots a run directory's run.json names (phase1: pareto_frontier.png; phase2 and frontier:
// energy_accuracy_<sweep>.png and energy_latency_<sweep>.png), each PNG replaced atomically. Returns one
// line per picture: "written FILE" or "FILE skipped: reason".
std::vector<std::string> redraw_plots(const std::filesystem::path& run_directory);

std::string frontier_run_name(std::time_t time);

}  // namespace nlpf
