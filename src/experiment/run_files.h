// Pieces every run directory shares (DESIGN §3): run names with local timestamps, the environment block
// of run.json, CSV cells from metrics JSON (null -> empty, never 0) and pareto.csv itself, written and read
// back (`nlpf plot`, `nlpf frontier`). pareto.csv columns: label, the swept parameters, the study's five
// metrics, on_frontier, frontier_cost, then ours (kParetoExtraColumns).
#pragma once

#include <chrono>
#include <ctime>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/device.h"
#include "measure/energy_meter.h"
#include "measure/protocol.h"
#include "train/trainer.h"

namespace nlpf {

// "2026-11-28_22-58-08" in local time, the prefix of every run directory's name.
std::string run_timestamp(std::time_t time);
// ISO 8601 local time with offset, for run.json.
std::string iso_time(std::chrono::system_clock::time_point t);

// The device of a run (training or measurement): "auto" takes the first CUDA GPU, else
// the CPU (saying which on `log` unless quiet); "cuda[:N]" must be visible; throws Error naming --device
// otherwise.
Device choose_run_device(const std::string& spec, bool quiet, std::ostream& log);
// The description of a device (the GPU's name, bus id and UUID, or the CPU's model).
DeviceDescription describe_device(Device device);

// The protocol's workload of one evaluation pass (CPU model or GPU runner): refuses to start a pass after
// Ctrl-C (INTERRUPTED: no run directory was completed), then hands the pass's predictions and batch latencies
// to the protocol.
Workload evaluation_workload(std::function<EvaluationResult()> pass, int64_t examples);

// run.json's "environment": nlpf version and commit, device, CPU model, threads, CUDA runtime/driver,
// host name, and the energy meter (source, availability and reason, description).
nlohmann::json environment_json(Device device, const DeviceDescription& description,
                                const EnergyMeter& meter);

// A CSV cell from a JSON value: numbers as shortest round-trip text (%.10g), booleans 1/0, null empty.
std::string csv_cell(const nlohmann::json& value);
nlohmann::json value_or_null(const nlohmann::json& object, const std::string& key);

extern const std::vector<std::string> kParetoMetricColumns;  // the study's five, in its order
extern const std::vector<std::string> kParetoExtraColumns;   // ours after on_frontier, frontier_cost

// One evaluated configuration: its label, the swept parameters (columns after "label", in order) and
// its inference metrics block (measure/metrics_json.h keys; only the pareto columns are read).
struct ParetoRow {
  std::string label;
  std::vector<std::pair<std::string, nlohmann::json>> parameters;
  nlohmann::json metrics = nlohmann::json::object();
};

struct ParetoTable {
  // "energy_per_example_j" when every placeable row has an energy reading, else
  // "average_latency_per_example_ms" (CPU without RAPL: the cost axis becomes latency, said in the column).
  std::string frontier_cost;
  std::vector<std::optional<bool>> on_frontier;  // per row; nullopt when the row has no cost or accuracy
  std::string csv;
};

// Computes the frontier (experiment/pareto.h) and the CSV text. Parameter columns are the union over rows in
// order of first appearance (a row without one leaves it empty).
ParetoTable make_pareto_table(const std::vector<ParetoRow>& rows);

struct ParetoFile {
  std::vector<std::string> parameter_columns;
  std::string frontier_cost;  // from the first data row's frontier_cost cell
  std::vector<ParetoRow> rows;
  std::vector<std::optional<bool>> on_frontier;
};

// Reads a pareto.csv written by make_pareto_table. Errors: IO for a missing file, INVALID_ARGUMENT naming
// FILE:LINE for a missing column, a wrong cell count or a cell that is not a number where one is expected.
ParetoFile read_pareto_csv(const std::filesystem::path& path);

}  // namespace nlpf
