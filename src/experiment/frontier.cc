// Merging runs into one frontier and redrawing plots; see frontier.h. A run is read through its run.json
// (what it was: command, task, device, plot title) and its pareto.csv (what it measured).
#include "experiment/frontier.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "experiment/run_files.h"
#include "experiment/run_plots.h"

namespace nlpf {

using json = nlohmann::json;

namespace {

json read_run_json(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "run.json";
  std::error_code ec;
  NLPF_CHECK(std::filesystem::is_directory(dir, ec), ErrorCode::IO, dir.string(), ": no such run directory");
  NLPF_CHECK(std::filesystem::is_regular_file(path, ec), ErrorCode::INVALID_ARGUMENT, dir.string(),
             ": no run.json (not a finished nlpf run)");
  try {
    json run = json::parse(read_file(path));
    NLPF_CHECK(run.is_object() && run.contains("command"), ErrorCode::INVALID_ARGUMENT, path.string(),
               ": no \"command\" (not written by nlpf)");
    return run;
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, path.string(), ": not valid JSON (", e.what(), ")");
  }
}

std::string text_at(const json& object, const char* key) {
  const json v = value_or_null(object, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

// The plot title a run recorded, else one rebuilt from its config (runs made before "plot_title").
RunPlotTitle title_of(const json& run) {
  const json title = value_or_null(run, "plot_title");
  if (title.is_object()) return {text_at(title, "model"), text_at(title, "task"), text_at(title, "device")};
  const json config = value_or_null(run, "config");
  const json environment = value_or_null(run, "environment");
  std::string model = text_at(config, "model");
  if (model.empty()) model = text_at(config, "baseline_model_directory");
  std::string device = text_at(environment, "device_name");
  if (device.empty()) device = text_at(environment, "cpu_model");
  return {std::filesystem::path(model).filename().string(), text_at(config, "task"), device};
}

// Which pictures a run has: phase1 one accuracy plot, the others an accuracy and a latency plot.
struct PlotFiles {
  std::string accuracy;
  std::string latency;  // empty for phase1
};

PlotFiles plot_files_of(const json& run, const std::filesystem::path& dir) {
  const std::string command = text_at(run, "command");
  if (command == "phase1") return {"pareto_frontier.png", ""};
  std::string tag = command == "frontier" ? "frontier" : text_at(value_or_null(run, "config"), "sweep");
  NLPF_CHECK(!tag.empty(), ErrorCode::INVALID_ARGUMENT, (dir / "run.json").string(),
             ": no config.sweep (cannot name the plots)");
  return {"energy_accuracy_" + tag + ".png", "energy_latency_" + tag + ".png"};
}

// Draws into a temporary name and renames, so an existing picture is replaced only by a complete one.
std::string draw_replacing(
    const std::filesystem::path& path,
    const std::function<std::optional<std::string>(const std::filesystem::path&)>& draw) {
  const std::filesystem::path staged = path.parent_path() / (".tmp-" + path.filename().string());
  const std::optional<std::string> skipped = draw(staged);
  if (skipped) {
    std::error_code ec;
    std::filesystem::remove(staged, ec);
    return path.filename().string() + " skipped: " + *skipped;
  }
  std::filesystem::rename(staged, path);
  return "written " + path.string();
}

std::vector<std::string> draw_run_plots(const std::filesystem::path& dir, const PlotFiles& files,
                                        const ParetoFile& pareto, const RunPlotTitle& title) {
  std::vector<std::string> lines;
  lines.push_back(draw_replacing(dir / files.accuracy, [&](const std::filesystem::path& p) {
    return draw_accuracy_plot(p, pareto.rows, pareto.on_frontier, pareto.frontier_cost, title);
  }));
  if (!files.latency.empty()) {
    lines.push_back(draw_replacing(dir / files.latency, [&](const std::filesystem::path& p) {
      return draw_energy_latency_plot(p, pareto.rows, title);
    }));
  }
  return lines;
}

}  // namespace

std::string frontier_run_name(std::time_t time) {
  return run_timestamp(time) + "_frontier";
}

std::vector<std::string> redraw_plots(const std::filesystem::path& dir) {
  const json run = read_run_json(dir);
  const ParetoFile pareto = read_pareto_csv(dir / "pareto.csv");
  return draw_run_plots(dir, plot_files_of(run, dir), pareto, title_of(run));
}

std::filesystem::path merge_frontier(const FrontierSettings& s) {
  std::ostream& out = s.out ? *s.out : std::cout;
  NLPF_CHECK(!s.run_directories.empty(), ErrorCode::INVALID_ARGUMENT,
             "frontier: give at least one run directory");
  const auto start_time = std::chrono::system_clock::now();
  std::vector<ParetoRow> rows;
  // The padding each row was measured with: its own column (a padding sweep or grid), else its run's
  // config.padding (null for runs made before --padding existed).
  std::vector<json> row_padding;
  json sources = json::array();
  RunPlotTitle title;
  std::string device;
  for (size_t i = 0; i < s.run_directories.size(); ++i) {
    const std::filesystem::path& dir = s.run_directories[i];
    const json run = read_run_json(dir);
    const RunPlotTitle run_title = title_of(run);
    const std::string run_device =
        text_at(value_or_null(run, "environment"), "device") + " (" + run_title.device + ")";
    if (i == 0) {
      title = run_title;
      device = run_device;
    }
    NLPF_CHECK(run_title.task == title.task, ErrorCode::INVALID_ARGUMENT, dir.string(), ": task '",
               run_title.task, "' differs from '", title.task, "' of ", s.run_directories[0].string(),
               " (a frontier compares one task)");
    NLPF_CHECK(run_device == device, ErrorCode::INVALID_ARGUMENT, dir.string(), ": device ", run_device,
               " differs from ", device, " of ", s.run_directories[0].string(),
               " (energy is only comparable on one device)");
    // Phase 2 names its model "<phase 1 model> (fine-tuned)": the same model as its baseline.
    const auto base_name = [](std::string name) {
      const std::string suffix = " (fine-tuned)";
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        name.resize(name.size() - suffix.size());
      }
      return name;
    };
    if (base_name(run_title.model) != base_name(title.model)) title.model = "several models";
    const std::string command = text_at(run, "command");
    const std::string prefix = command == "phase2" ? text_at(value_or_null(run, "config"), "sweep") : command;
    const ParetoFile pareto = read_pareto_csv(dir / "pareto.csv");
    const json run_padding = value_or_null(value_or_null(run, "config"), "padding");
    for (const ParetoRow& r : pareto.rows) {
      ParetoRow row = r;
      row.label = prefix + "/" + r.label;
      row.parameters.insert(row.parameters.begin(), {"source_run", dir.filename().string()});
      json padding = run_padding.is_string() ? run_padding : json(nullptr);
      for (const auto& [name, value] : r.parameters) {
        if (name == "padding") padding = value;
      }
      row_padding.push_back(padding);
      rows.push_back(std::move(row));
    }
    sources.push_back({{"run_directory", std::filesystem::absolute(dir).string()},
                       {"command", command},
                       {"points", pareto.rows.size()},
                       {"frontier_cost", pareto.frontier_cost}});
  }
  // Runs measured with different paddings did different work for the same setting: say which, in a column.
  std::set<std::string> paddings;
  for (const json& padding : row_padding) {
    if (padding.is_string()) paddings.insert(padding.get<std::string>());
  }
  if (paddings.size() > 1) {
    for (size_t i = 0; i < rows.size(); ++i) {
      std::vector<std::pair<std::string, json>>& parameters = rows[i].parameters;
      const bool has_column = std::any_of(parameters.begin(), parameters.end(),
                                          [](const auto& parameter) { return parameter.first == "padding"; });
      if (!has_column) parameters.insert(parameters.begin() + 1, {"padding", row_padding[i]});
    }
  }
  const ParetoTable table = make_pareto_table(rows);
  std::filesystem::create_directories(s.runs_dir);
  StagedDirectory run(std::filesystem::path(s.runs_dir) /
                      frontier_run_name(std::chrono::system_clock::to_time_t(start_time)));
  write_file_atomic(run.path() / "pareto.csv", table.csv);
  const ParetoFile merged{{}, table.frontier_cost, rows, table.on_frontier};
  const std::vector<std::string> plot_lines = draw_run_plots(
      run.path(), {"energy_accuracy_frontier.png", "energy_latency_frontier.png"}, merged, title);
  const json run_json = {
      {"command", "frontier"},
      {"sources", sources},
      {"points", rows.size()},
      {"frontier_cost", table.frontier_cost},
      {"plot_title", {{"model", title.model}, {"task", title.task}, {"device", title.device}}},
      {"device", device},
      {"start_time", iso_time(start_time)}};
  write_file_atomic(run.path() / "run.json", run_json.dump(2) + "\n");
  run.commit();
  if (!s.quiet) {
    out << "frontier: " << rows.size() << " point(s) from " << s.run_directories.size()
        << " run(s); on the frontier (" << table.frontier_cost << "):";
    for (size_t i = 0; i < rows.size(); ++i) {
      if (table.on_frontier[i].value_or(false)) out << " " << rows[i].label;
    }
    out << "\n";
  }
  for (const std::string& line : plot_lines) {
    if (line.rfind("written ", 0) != 0) out << line << "\n";
  }
  out << "run directory: " << run.final_path().string() << "\n";
  return run.final_path();
}

}  // namespace nlpf
