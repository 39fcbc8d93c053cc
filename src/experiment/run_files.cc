// Run-directory pieces shared by phase1, phase2, frontier and plot; see run_files.h.
#include "experiment/run_files.h"

#include <omp.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "experiment/pareto.h"
#include "nlpf/build_info.h"
#include "text/csv.h"
#include "train/interrupt.h"

namespace nlpf {

using json = nlohmann::json;

const std::vector<std::string> kParetoMetricColumns = {"accuracy", "average_latency_per_example_ms",
                                                       "energy_per_example_j", "energy_per_correct_j",
                                                       "peak_gpu_memory_mb"};
const std::vector<std::string> kParetoExtraColumns = {"energy_per_example_j_ci_low",
                                                      "energy_per_example_j_ci_high",
                                                      "dynamic_energy_per_example_j",
                                                      "throughput_examples_per_s",
                                                      "latency_p50_ms",
                                                      "latency_p90_ms",
                                                      "latency_p99_ms",
                                                      "trials"};

namespace {

std::string local_time_string(std::time_t time, const char* format) {
  std::tm tm{};
  localtime_r(&time, &tm);
  char text[64];
  std::strftime(text, sizeof text, format, &tm);
  return text;
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

constexpr const char* kOnFrontier = "on_frontier";
constexpr const char* kFrontierCost = "frontier_cost";

}  // namespace

std::string run_timestamp(std::time_t time) {
  return local_time_string(time, "%Y-%m-%d_%H-%M-%S");
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  return local_time_string(std::chrono::system_clock::to_time_t(t), "%Y-%m-%dT%H:%M:%S%z");
}

Device choose_run_device(const std::string& spec, bool quiet, std::ostream& log) {
  const Device device = resolve_device(spec);
  if (spec == "auto" && !quiet) {
    log << "device: auto -> " << device_string(device) << " ("
        << (device.type == DeviceType::CUDA ? describe_device(device).name
            : cuda_built()                  ? std::string("no CUDA GPU visible")
                                            : std::string("no CUDA in this build"))
        << ")\n";
  }
  return device;
}

DeviceDescription describe_device(Device device) {
  if (device.type == DeviceType::CPU) return cpu_description();
  for (const DeviceDescription& d : cuda_devices()) {
    if (d.device == device) return d;
  }
  NLPF_THROW(ErrorCode::UNSUPPORTED, device_string(device), " is not visible");
}

Workload evaluation_workload(std::function<EvaluationResult()> pass, int64_t examples) {
  return [pass = std::move(pass), examples]() {
    NLPF_CHECK(!interrupt_flag().load(), ErrorCode::INTERRUPTED,
               "interrupted by Ctrl-C during measurement; no run directory was completed");
    EvaluationResult result = pass();
    return PassResult{examples, std::move(result.predictions), std::move(result.batch_latencies_ms)};
  };
}

json environment_json(Device device, const DeviceDescription& description, const EnergyMeter& meter) {
  const std::string cuda_runtime = cuda_runtime_version();
  const std::string cuda_driver = cuda_driver_version();
  return {{"nlpf_version", kVersion},
          {"nlpf_commit", kGitCommit},
          {"device", device_string(device)},
          {"device_name", description.name},
          {"cpu_model", cpu_description().name},
          {"threads", omp_get_max_threads()},
          {"cuda_runtime", cuda_runtime.empty() ? json(nullptr) : json(cuda_runtime)},
          {"cuda_driver", cuda_driver.empty() ? json(nullptr) : json(cuda_driver)},
          {"hostname", host_name()},
          {"energy_meter",
           {{"source", meter.source()},
            {"available", meter.available()},
            {"unavailable_reason", meter.available() ? json(nullptr) : json(meter.unavailable_reason())},
            {"description", meter.describe()}}}};
}

std::string csv_cell(const json& value) {
  if (value.is_null()) return "";
  if (value.is_boolean()) return value.get<bool>() ? "1" : "0";
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  if (value.is_number()) {
    char text[32];
    std::snprintf(text, sizeof text, "%.10g", value.get<double>());
    return text;
  }
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

json value_or_null(const json& object, const std::string& key) {
  return object.is_object() && object.contains(key) ? object.at(key) : json(nullptr);
}

ParetoTable make_pareto_table(const std::vector<ParetoRow>& rows) {
  ParetoTable table;
  bool energy_everywhere = !rows.empty();
  for (const ParetoRow& r : rows) {
    if (!value_or_null(r.metrics, "energy_per_example_j").is_number()) energy_everywhere = false;
  }
  table.frontier_cost = energy_everywhere ? "energy_per_example_j" : "average_latency_per_example_ms";

  std::vector<ParetoPoint> points;
  for (const ParetoRow& r : rows) {
    ParetoPoint p;
    const json cost = value_or_null(r.metrics, table.frontier_cost);
    const json accuracy = value_or_null(r.metrics, "accuracy");
    if (cost.is_number() && accuracy.is_number()) {
      p.cost = cost.get<double>();
      p.accuracy = accuracy.get<double>();
    }
    points.push_back(p);
  }
  const std::vector<bool> frontier = pareto_frontier(points);

  std::vector<std::string> parameter_columns;
  for (const ParetoRow& r : rows) {
    for (const auto& [name, value] : r.parameters) {
      (void)value;
      if (std::find(parameter_columns.begin(), parameter_columns.end(), name) == parameter_columns.end()) {
        parameter_columns.push_back(name);
      }
    }
  }
  std::ostringstream csv;
  csv << "label";
  for (const std::string& c : parameter_columns) csv << ',' << c;
  for (const std::string& c : kParetoMetricColumns) csv << ',' << c;
  csv << ',' << kOnFrontier << ',' << kFrontierCost;
  for (const std::string& c : kParetoExtraColumns) csv << ',' << c;
  csv << '\n';
  for (size_t i = 0; i < rows.size(); ++i) {
    const ParetoRow& r = rows[i];
    NLPF_CHECK(r.label.find_first_of(",\"\n\r") == std::string::npos, ErrorCode::INTERNAL,
               "pareto.csv label '", r.label, "' holds a CSV special character");
    csv << r.label;
    for (const std::string& c : parameter_columns) {
      json cell = nullptr;
      for (const auto& [name, value] : r.parameters) {
        if (name == c) cell = value;
      }
      csv << ',' << csv_cell(cell);
    }
    for (const std::string& c : kParetoMetricColumns) csv << ',' << csv_cell(value_or_null(r.metrics, c));
    table.on_frontier.push_back(points[i].cost ? std::optional<bool>(frontier[i]) : std::nullopt);
    csv << ',' << (points[i].cost ? (frontier[i] ? "1" : "0") : "") << ',' << table.frontier_cost;
    for (const std::string& c : kParetoExtraColumns) csv << ',' << csv_cell(value_or_null(r.metrics, c));
    csv << '\n';
  }
  table.csv = csv.str();
  return table;
}

namespace {

// A numeric cell: empty -> null; otherwise the whole cell must parse as a finite number.
json parse_number_cell(const std::string& cell, const std::string& where, const std::string& column) {
  if (cell.empty()) return nullptr;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  NLPF_CHECK(end == cell.c_str() + cell.size() && errno == 0 && std::isfinite(v), ErrorCode::INVALID_ARGUMENT,
             where, ": column '", column, "' holds '", cell, "', not a number");
  if (column == "trials" && v == std::floor(v)) return static_cast<int64_t>(v);
  return v;
}

// A parameter cell keeps integers as integers and everything else as text (precision names).
json parse_parameter_cell(const std::string& cell) {
  if (cell.empty()) return nullptr;
  char* end = nullptr;
  const long long v = std::strtoll(cell.c_str(), &end, 10);
  if (end == cell.c_str() + cell.size()) return static_cast<int64_t>(v);
  return cell;
}

}  // namespace

ParetoFile read_pareto_csv(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::vector<CsvRecord> records = parse_csv_records(read_file(path), name);
  while (!records.empty() && records.back().blank) records.pop_back();
  NLPF_CHECK(!records.empty(), ErrorCode::INVALID_ARGUMENT, name, ": empty (expected a pareto.csv header)");
  const std::vector<std::string>& header = records[0].fields;
  const auto column = [&](const std::string& c) -> size_t {
    const auto it = std::find(header.begin(), header.end(), c);
    NLPF_CHECK(it != header.end(), ErrorCode::INVALID_ARGUMENT, name, ":1: no column '", c,
               "' (not a pareto.csv written by nlpf)");
    return static_cast<size_t>(it - header.begin());
  };
  NLPF_CHECK(header[0] == "label", ErrorCode::INVALID_ARGUMENT, name, ":1: the first column is '", header[0],
             "', expected 'label'");
  const size_t first_metric = column(kParetoMetricColumns[0]);
  ParetoFile file;
  file.parameter_columns.assign(header.begin() + 1,
                                header.begin() + static_cast<std::ptrdiff_t>(first_metric));
  std::vector<std::pair<std::string, size_t>> metric_columns;
  for (const std::string& c : kParetoMetricColumns) metric_columns.emplace_back(c, column(c));
  const size_t on_frontier = column(kOnFrontier);
  const size_t frontier_cost = column(kFrontierCost);
  for (const std::string& c : kParetoExtraColumns) {
    if (std::find(header.begin(), header.end(), c) != header.end()) metric_columns.emplace_back(c, column(c));
  }
  for (size_t i = 1; i < records.size(); ++i) {
    const CsvRecord& r = records[i];
    const std::string where = name + ":" + std::to_string(r.line);
    NLPF_CHECK(r.fields.size() == header.size(), ErrorCode::INVALID_ARGUMENT, where, ": expected ",
               header.size(), " fields, got ", r.fields.size());
    ParetoRow row;
    row.label = r.fields[0];
    for (size_t c = 1; c < first_metric; ++c)
      row.parameters.emplace_back(header[c], parse_parameter_cell(r.fields[c]));
    for (const auto& [c, index] : metric_columns)
      row.metrics[c] = parse_number_cell(r.fields[index], where, c);
    const std::string& flag = r.fields[on_frontier];
    NLPF_CHECK(flag.empty() || flag == "0" || flag == "1", ErrorCode::INVALID_ARGUMENT, where,
               ": on_frontier is '", flag, "', expected 0, 1 or empty");
    file.on_frontier.push_back(flag.empty() ? std::nullopt : std::optional<bool>(flag == "1"));
    const std::string& cost = r.fields[frontier_cost];
    NLPF_CHECK(cost == "energy_per_example_j" || cost == "average_latency_per_example_ms",
               ErrorCode::INVALID_ARGUMENT, where, ": frontier_cost is '", cost,
               "', expected energy_per_example_j or average_latency_per_example_ms");
    if (file.frontier_cost.empty()) file.frontier_cost = cost;
    NLPF_CHECK(cost == file.frontier_cost, ErrorCode::INVALID_ARGUMENT, where, ": frontier_cost '", cost,
               "' differs from the first row's '", file.frontier_cost, "'");
    file.rows.push_back(std::move(row));
  }
  return file;
}

}  // namespace nlpf
