// Scaled-out phase 2 (phase2_scale_out.h): plan a sweep directory, run its points in separate processes
// (Slurm array tasks or one process per local device), merge them with phase2's own finishing step.
// Measuring and finishing are phase2_steps.h's, shared with the local sweep.
#include "experiment/phase2_scale_out.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <set>
#include <sstream>

#include "backend/precision.h"
#include "core/error.h"
#include "core/file_util.h"
#include "experiment/phase2_steps.h"
#include "experiment/run_files.h"
#include "train/interrupt.h"

extern char** environ;

namespace nlpf {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kPlanFile = "plan.json";

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string this_host() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

json env_or_null(const char* name) {
  const char* value = std::getenv(name);
  return value ? json(value) : json(nullptr);
}

std::string own_executable() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  NLPF_CHECK(!ec, ErrorCode::IO, "/proc/self/exe: cannot find the nlpf binary (", ec.message(), ")");
  return self.string();
}

// Runs `command` through the shell; returns its exit status and stdout+stderr.
int run_command(const std::string& command, std::string& output) {
  output.clear();
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool on_path(const std::string& tool) {
  std::string output;
  return run_command("command -v " + tool + " >/dev/null", output) == 0;
}

std::string trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  return text.substr(start);
}

json read_json_file(const fs::path& path) {
  try {
    return json::parse(read_file(path));
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, path.string(), ": not valid JSON (", e.what(), ")");
  }
}

json read_plan(const fs::path& directory) {
  const fs::path path = directory / kPlanFile;
  NLPF_CHECK(fs::is_regular_file(path), ErrorCode::IO, path.string(),
             ": no such file (not a sweep directory planned by phase2 --submit, --devices or --resume)");
  json plan = read_json_file(path);
  NLPF_CHECK(
      plan.is_object() && plan.contains("settings") && plan.contains("points") && plan["points"].is_array(),
      ErrorCode::INVALID_ARGUMENT, path.string(), ": unexpected layout (settings and points expected)");
  return plan;
}

std::vector<std::string> plan_labels(const json& plan) {
  std::vector<std::string> labels;
  for (const json& p : plan.at("points")) labels.push_back(p.at("label").get<std::string>());
  return labels;
}

fs::path tasks_dir(const fs::path& directory) {
  return directory / "tasks";
}
fs::path running_marker(const fs::path& directory, const std::string& label) {
  return tasks_dir(directory) / (label + ".running.json");
}
fs::path failed_marker(const fs::path& directory, const std::string& label) {
  return tasks_dir(directory) / (label + ".failed.json");
}
bool point_done(const fs::path& directory, const std::string& label) {
  std::error_code ec;
  return fs::is_regular_file(directory / label / "metrics.json", ec);
}

json slurm_task_json() {
  return {{"slurm_job_id", env_or_null("SLURM_JOB_ID")},
          {"slurm_array_job_id", env_or_null("SLURM_ARRAY_JOB_ID")},
          {"slurm_array_task_id", env_or_null("SLURM_ARRAY_TASK_ID")}};
}

// The settings a resubmission must repeat (everything but how and where the points run).
json comparable_settings(json settings) {
  for (const char* key : {"device", "runs_dir"}) settings.erase(key);
  return settings;
}

// Job states by Slurm task id ("12_3"), from sacct, else squeue (which keeps finished jobs for MinJobAge).
std::map<std::string, std::string> scheduler_states(const fs::path& directory, std::string& source) {
  std::map<std::string, std::string> states;
  source = "none";
  const fs::path submissions_path = directory / "slurm" / "submissions.json";
  std::error_code ec;
  if (!fs::is_regular_file(submissions_path, ec)) return states;
  const json submissions = read_json_file(submissions_path);
  std::vector<std::string> array_ids;
  for (const json& s : submissions) array_ids.push_back(s.at("array_job_id").get<std::string>());
  if (array_ids.empty()) return states;
  std::string ids;
  for (const std::string& id : array_ids) ids += (ids.empty() ? "" : ",") + id;
  const auto parse = [&](const std::string& text) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      const size_t bar = line.find('|');
      if (bar == std::string::npos) continue;
      const std::string job = trim(line.substr(0, bar));
      std::string state = trim(line.substr(bar + 1));
      state = state.substr(0, state.find(' '));  // "CANCELLED by 0"
      for (const std::string& array_id : array_ids) {
        for (int64_t task : parse_slurm_array_tasks(job, array_id)) {
          states[array_id + "_" + std::to_string(task)] = state;
        }
      }
    }
  };
  std::string output;
  if (on_path("sacct") &&
      run_command("sacct -n -P -X --format=JobID,State -j " + ids + " 2>/dev/null", output) == 0) {
    source = "sacct";
    parse(output);
    return states;
  }
  if (on_path("squeue") &&
      run_command("squeue -h -r -t all -o '%i|%T' -j " + ids + " 2>/dev/null", output) == 0) {
    source = "squeue";
    parse(output);
  }
  return states;
}

// The Slurm task that last ran each point index ("<array job>_<index>").
std::map<int64_t, std::string> latest_tasks(const fs::path& directory) {
  std::map<int64_t, std::string> tasks;
  const fs::path path = directory / "slurm" / "submissions.json";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return tasks;
  for (const json& s : read_json_file(path)) {
    for (const json& index : s.at("indices")) {
      tasks[index.get<int64_t>()] = s.at("array_job_id").get<std::string>() + "_" + index.dump();
    }
  }
  return tasks;
}

bool process_alive(const json& marker) {
  if (marker.value("host", "") != this_host() || !marker.contains("pid")) return true;  // cannot tell
  return ::kill(static_cast<pid_t>(marker.at("pid").get<int64_t>()), 0) == 0 || errno == EPERM;
}

// Staged folders (".<label>.partial-<pid>") that no process will finish: those of points done or failed (a
// task killed mid-point leaves one behind; it never looks complete, but takes space).
void remove_stale_partials(const fs::path& directory, const SweepStatus& status) {
  std::set<std::string> stale;
  for (const PointStatus& p : status.points) {
    if (p.state == PointState::DONE || p.state == PointState::FAILED) stale.insert(p.label);
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t partial = name.rfind(".partial-");
    if (name.empty() || name[0] != '.' || partial == std::string::npos) continue;
    if (stale.count(name.substr(1, partial - 1))) fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

const char* point_state_name(PointState state) {
  switch (state) {
    case PointState::DONE:
      return "done";
    case PointState::PENDING:
      return "pending";
    case PointState::RUNNING:
      return "running";
    case PointState::FAILED:
      return "failed";
  }
  return "pending";
}

std::string slurm_array_list(const std::vector<int64_t>& indices) {
  std::vector<int64_t> sorted = indices;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string list;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!list.empty()) list += ",";
    list += std::to_string(sorted[i]);
    if (j > i) list += "-" + std::to_string(sorted[j]);
    i = j + 1;
  }
  return list;
}

std::vector<int64_t> parse_slurm_array_tasks(const std::string& job_id, const std::string& array_job_id) {
  const std::string prefix = array_job_id + "_";
  if (job_id.rfind(prefix, 0) != 0) return {};
  std::string rest = job_id.substr(prefix.size());
  std::vector<int64_t> tasks;
  const auto number = [](const std::string& text, int64_t& value) {
    if (text.empty() || !std::all_of(text.begin(), text.end(), ::isdigit)) return false;
    value = std::stoll(text);
    return true;
  };
  int64_t single = 0;
  if (number(rest, single)) return {single};
  if (rest.size() < 2 || rest.front() != '[' || rest.back() != ']') return {};
  rest = rest.substr(1, rest.size() - 2);
  rest = rest.substr(0, rest.find('%'));  // "[0-9%2]": at most 2 at once
  std::istringstream items(rest);
  std::string item;
  while (std::getline(items, item, ',')) {
    const size_t dash = item.find('-');
    int64_t first = 0, last = 0;
    if (dash == std::string::npos) {
      if (number(item, first)) tasks.push_back(first);
    } else if (number(item.substr(0, dash), first) && number(item.substr(dash + 1), last)) {
      for (int64_t t = first; t <= last; ++t) tasks.push_back(t);
    }
  }
  return tasks;
}

json phase2_settings_json(const Phase2Settings& s) {
  const auto optional_int = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };
  return {{"sweep", sweep_file_tag(s.sweep)},
          {"baseline_model_directory", fs::absolute(s.baseline_model_directory).lexically_normal().string()},
          {"data",
           {{"data_dir", s.data.data_dir.empty() ? "" : fs::absolute(s.data.data_dir).string()},
            {"train_file", s.data.train_file.empty() ? "" : fs::absolute(s.data.train_file).string()},
            {"eval_file", s.data.eval_file.empty() ? "" : fs::absolute(s.data.eval_file).string()},
            {"task", s.data.task},
            {"text_column", s.data.text_column},
            {"label_column", s.data.label_column},
            {"max_train_examples", optional_int(s.data.max_train_examples)},
            {"max_eval_examples", optional_int(s.data.max_eval_examples)}}},
          {"sequence_lengths", s.sequence_lengths},
          {"num_layers", s.num_layers},
          {"precisions", s.precisions},
          {"paddings", s.paddings},
          {"batch_sizes", s.batch_sizes},
          {"max_sequence_length", optional_int(s.max_sequence_length)},
          {"eval_batch_size", s.eval_batch_size},
          {"padding", s.padding},
          {"refit_epochs", s.refit_epochs},
          {"skip_failed_precisions", s.skip_failed_precisions},
          {"calibration_batches", s.calibration_batches},
          {"fp8_weight_scales", s.fp8_weight_scales},
          {"device", s.device},
          {"runs_dir", s.runs_dir},
          {"protocol",
           {{"trials", s.protocol.trials},
            {"min_trial_seconds", s.protocol.min_trial_seconds},
            {"idle_seconds", s.protocol.idle_seconds},
            {"warmup_min_seconds", s.protocol.warmup_min_seconds},
            {"cooldown_seconds", s.protocol.cooldown_seconds},
            {"cv_flag_threshold", s.protocol.cv_flag_threshold},
            {"ci_level", s.protocol.ci_level}}}};
}

Phase2Settings phase2_settings_from_json(const json& j) {
  Phase2Settings s;
  try {
    const std::string sweep = j.at("sweep").get<std::string>();
    bool known = false;
    for (SweepKind kind : {SweepKind::MAX_SEQUENCE_LENGTH, SweepKind::LAYERS, SweepKind::PRECISION,
                           SweepKind::PADDING, SweepKind::BATCH_SIZE, SweepKind::GRID}) {
      if (sweep_file_tag(kind) == sweep) {
        s.sweep = kind;
        known = true;
      }
    }
    NLPF_CHECK(known, ErrorCode::INVALID_ARGUMENT, "plan.json: unknown sweep '", sweep, "'");
    const auto optional_int = [](const json& v) {
      return v.is_null() ? std::nullopt : std::optional(v.get<int64_t>());
    };
    s.baseline_model_directory = j.at("baseline_model_directory").get<std::string>();
    const json& d = j.at("data");
    s.data.data_dir = d.at("data_dir").get<std::string>();
    s.data.train_file = d.at("train_file").get<std::string>();
    s.data.eval_file = d.at("eval_file").get<std::string>();
    s.data.task = d.at("task").get<std::string>();
    s.data.text_column = d.at("text_column").get<std::string>();
    s.data.label_column = d.at("label_column").get<std::string>();
    s.data.max_train_examples = optional_int(d.at("max_train_examples"));
    s.data.max_eval_examples = optional_int(d.at("max_eval_examples"));
    s.sequence_lengths = j.at("sequence_lengths").get<std::vector<int64_t>>();
    s.num_layers = j.at("num_layers").get<std::vector<int64_t>>();
    s.precisions = j.at("precisions").get<std::vector<std::string>>();
    s.paddings = j.at("paddings").get<std::vector<std::string>>();
    s.batch_sizes = j.at("batch_sizes").get<std::vector<int64_t>>();
    s.max_sequence_length = optional_int(j.at("max_sequence_length"));
    s.eval_batch_size = j.at("eval_batch_size").get<int64_t>();
    s.padding = j.at("padding").get<std::string>();
    s.refit_epochs = j.at("refit_epochs").get<int>();
    s.skip_failed_precisions = j.at("skip_failed_precisions").get<bool>();
    s.calibration_batches = j.value("calibration_batches", s.calibration_batches);  // absent before fp8
    s.fp8_weight_scales = j.value("fp8_weight_scales", s.fp8_weight_scales);  // absent before per channel
    s.device = j.at("device").get<std::string>();
    s.runs_dir = j.at("runs_dir").get<std::string>();
    const json& p = j.at("protocol");
    s.protocol.trials = p.at("trials").get<int>();
    s.protocol.min_trial_seconds = p.at("min_trial_seconds").get<double>();
    s.protocol.idle_seconds = p.at("idle_seconds").get<double>();
    s.protocol.warmup_min_seconds = p.at("warmup_min_seconds").get<double>();
    s.protocol.cooldown_seconds = p.at("cooldown_seconds").get<double>();
    s.protocol.cv_flag_threshold = p.at("cv_flag_threshold").get<double>();
    s.protocol.ci_level = p.at("ci_level").get<double>();
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, "plan.json settings: unexpected layout (", e.what(), ")");
  }
  return s;
}

SweepStatus phase2_status(const fs::path& directory) {
  SweepStatus status;
  status.directory = directory;
  const json plan = read_plan(directory);
  std::error_code ec;
  status.merged = fs::is_regular_file(directory / "run.json", ec);
  const std::map<std::string, std::string> states = scheduler_states(directory, status.scheduler);
  const std::map<int64_t, std::string> tasks = latest_tasks(directory);
  std::map<std::string, std::string> refused;
  for (const json& e : plan.value("errors", json::array())) {
    refused[e.at("point").get<std::string>()] = e.value("error", "");
  }
  for (const json& p : plan.at("points")) {
    PointStatus point;
    point.label = p.at("label").get<std::string>();
    const int64_t index = p.at("index").get<int64_t>();
    if (point_done(directory, point.label)) {
      point.state = PointState::DONE;
      try {
        const json metrics = read_json_file(directory / point.label / "metrics.json");
        point.detail = "on " + value_or_null(value_or_null(metrics, "device"), "host").dump();
      } catch (const Error&) {
      }
      status.points.push_back(point);
      continue;
    }
    if (refused.count(point.label)) {
      point.state = PointState::FAILED;
      point.detail = "refused: " + refused[point.label];
      status.points.push_back(point);
      continue;
    }
    std::optional<std::string> job_state;
    if (tasks.count(index) && states.count(tasks.at(index))) job_state = states.at(tasks.at(index));
    const fs::path failed = failed_marker(directory, point.label);
    const fs::path running = running_marker(directory, point.label);
    std::string failure;
    if (fs::is_regular_file(failed, ec)) {
      const json marker = read_json_file(failed);
      failure = marker.value("code", "") + ": " + marker.value("error", "");
    }
    if (job_state) {
      const std::string& s = *job_state;
      const std::string job = "job " + tasks.at(index) + " " + s;
      if (s == "RUNNING" || s == "COMPLETING" || s == "CONFIGURING" || s == "SUSPENDED") {
        point.state = PointState::RUNNING;
        point.detail = job;
      } else if (s == "PENDING" || s == "REQUEUED" || s == "RESIZING") {
        point.state = PointState::PENDING;
        point.detail = job;
      } else {
        point.state = PointState::FAILED;
        point.detail = failure.empty() ? job + " without a finished point" : failure + " (" + job + ")";
      }
    } else if (!failure.empty()) {
      point.state = PointState::FAILED;
      point.detail = failure;
    } else if (fs::is_regular_file(running, ec)) {
      const json marker = read_json_file(running);
      const std::string where =
          "host " + marker.value("host", "?") + ", pid " + value_or_null(marker, "pid").dump() +
          (marker["slurm_job_id"].is_string() ? ", job " + marker["slurm_job_id"].get<std::string>()
                                              : std::string());
      if (process_alive(marker)) {
        point.state = PointState::RUNNING;
        point.detail = where;
      } else {
        point.state = PointState::FAILED;
        point.detail = "its process is gone without a finished point (killed?): " + where;
      }
    }
    status.points.push_back(point);
  }
  return status;
}

void print_phase2_status(const SweepStatus& status, std::ostream& out) {
  std::map<PointState, int> counts;
  for (const PointStatus& p : status.points) ++counts[p.state];
  out << status.directory.string() << "\n"
      << "points: " << status.points.size() << " (done " << counts[PointState::DONE] << ", pending "
      << counts[PointState::PENDING] << ", running " << counts[PointState::RUNNING] << ", failed "
      << counts[PointState::FAILED] << "); merged: " << (status.merged ? "yes" : "no")
      << "; job states from: " << status.scheduler << "\n";
  for (const PointStatus& p : status.points) {
    out << "  " << point_state_name(p.state) << "\t" << p.label;
    if (!p.detail.empty()) out << "\t" << p.detail;
    out << "\n";
  }
}

void run_phase2_point(const fs::path& directory, int64_t index, const std::string& device_override,
                      bool quiet, std::ostream& log) {
  const json plan_json = read_plan(directory);
  const std::vector<std::string> labels = plan_labels(plan_json);
  NLPF_CHECK(index >= 0 && index < static_cast<int64_t>(labels.size()), ErrorCode::INVALID_ARGUMENT,
             "run-point: index ", index, " is outside 0..", labels.size() - 1, " of ",
             (directory / kPlanFile).string());
  const std::string& label = labels[static_cast<size_t>(index)];
  if (point_done(directory, label)) {
    if (!quiet) log << label << ": already done\n";
    return;
  }
  fs::create_directories(tasks_dir(directory));
  Phase2Settings settings = phase2_settings_from_json(plan_json.at("settings"));
  settings.quiet = quiet;
  if (!device_override.empty()) settings.device = device_override;
  json running = {{"point", label},
                  {"index", index},
                  {"host", this_host()},
                  {"pid", static_cast<int64_t>(::getpid())},
                  {"device", settings.device},
                  {"started", iso_time(std::chrono::system_clock::now())}};
  running.update(slurm_task_json());
  write_file_atomic(running_marker(directory, label), running.dump(2) + "\n");
  std::error_code ec;
  fs::remove(failed_marker(directory, label), ec);
  std::string stage = "failed";
  std::string precision;
  try {
    const Device device = choose_run_device(settings.device, /*quiet=*/true, log);
    Phase2Plan plan = plan_phase2(settings);
    NLPF_CHECK(plan.points.size() == labels.size() && plan.points[static_cast<size_t>(index)].label == label,
               ErrorCode::INVALID_ARGUMENT, (directory / kPlanFile).string(),
               ": its settings no longer plan point ", index, " as ", label, " (was the baseline changed?)");
    const Phase2Point point = plan.points[static_cast<size_t>(index)];
    precision = point.precision;
    plan.points = {point};
    const DeviceDescription description = describe_device(device);
    if (const std::optional<std::string> reason =
            precision_unsupported_reason(description, parse_precision(point.precision))) {
      stage = "refused";
      NLPF_THROW(ErrorCode::UNSUPPORTED, "precision ", point.precision, " on ", description.name, ": ",
                 *reason);
    }
    const Phase2Inputs inputs = load_phase2_inputs(plan, plan.points);
    SigintGuard sigint_guard;
    PointMeasurer measurer = make_point_measurer(device);
    std::set<std::string> injected;
    if (const char* names = std::getenv("NLPF_FAIL_POINTS")) {
      std::istringstream list(names);
      std::string name;
      while (std::getline(list, name, ',')) injected.insert(name);
    }
    const MeasuredPoint measured = measure_point(plan, inputs, measurer, point, directory / label, log, [&] {
      NLPF_CHECK(!injected.count(label), ErrorCode::INTERNAL, label,
                 ": failure injected by NLPF_FAIL_POINTS (nothing was renamed into place)");
    });
    measurer.sampler->stop();
    fs::remove(running_marker(directory, label), ec);
    if (!quiet) log_measured_point(log, static_cast<size_t>(index), labels.size(), measured);
  } catch (const Error& e) {
    json failed = {{"point", label},         {"index", index},
                   {"precision", precision}, {"stage", stage},
                   {"error", e.what()},      {"code", error_code_name(e.code())},
                   {"host", this_host()},    {"time", iso_time(std::chrono::system_clock::now())}};
    failed.update(slurm_task_json());
    write_file_atomic(failed_marker(directory, label), failed.dump(2) + "\n");
    fs::remove(running_marker(directory, label), ec);
    throw;
  }
}

Phase2Result merge_phase2(const fs::path& directory, bool quiet, std::ostream& out, std::ostream& log) {
  const json plan_json = read_plan(directory);
  Phase2Settings settings = phase2_settings_from_json(plan_json.at("settings"));
  settings.quiet = quiet;
  const Phase2Plan plan = plan_phase2(settings);
  const std::vector<std::string> labels = plan_labels(plan_json);
  NLPF_CHECK(plan.points.size() == labels.size(), ErrorCode::INVALID_ARGUMENT,
             (directory / kPlanFile).string(), ": its settings now plan ", plan.points.size(),
             " points, the plan holds ", labels.size());
  const SweepStatus status = phase2_status(directory);
  remove_stale_partials(directory, status);
  std::map<std::string, json> refused;
  for (const json& e : plan_json.value("errors", json::array()))
    refused[e.at("point").get<std::string>()] = e;

  std::vector<ParetoRow> rows;
  json point_entries = json::array();
  json errors = json::array();
  std::map<std::string, std::vector<std::string>> labels_by_device;
  json environment;
  bool gpu = false;
  for (size_t i = 0; i < plan.points.size(); ++i) {
    const Phase2Point& point = plan.points[i];
    const PointStatus& state = status.points[i];
    if (state.state != PointState::DONE) {
      if (refused.count(point.label)) {
        errors.push_back(refused[point.label]);
        continue;
      }
      json entry = {{"point", point.label},
                    {"precision", point.precision},
                    {"stage", point_state_name(state.state)},
                    {"error", state.detail.empty() ? std::string("never ran") : state.detail},
                    {"code", nullptr}};
      std::error_code ec;
      if (fs::is_regular_file(failed_marker(directory, point.label), ec)) {
        const json marker = read_json_file(failed_marker(directory, point.label));
        entry["stage"] = marker.value("stage", "failed");
        entry["error"] = marker.value("error", "");
        entry["code"] = marker.value("code", "");
        if (state.state != PointState::FAILED)
          entry["error"] = entry["error"].get<std::string>() + " (" + state.detail + ")";
      }
      errors.push_back(entry);
      continue;
    }
    const json metrics = read_json_file(directory / point.label / "metrics.json");
    const json device = value_or_null(metrics, "device");
    const std::string device_name =
        device.is_object() ? device.value("device_name", std::string("unknown device")) : "unknown device";
    labels_by_device[device_name].push_back(point.label);
    if (environment.is_null()) {
      environment = value_or_null(device, "environment");
      gpu = value_or_null(device, "gpu_name").is_string();
    }
    rows.push_back({point.label, point.parameters, metrics.at("inference_benchmark_metrics")});
    point_entries.push_back(metrics.at("point"));
  }
  if (labels_by_device.size() > 1) {
    std::ostringstream which;
    for (const auto& [name, names] : labels_by_device) {
      which << (which.tellp() > 0 ? "; " : "") << "'" << name << "': ";
      for (size_t k = 0; k < names.size(); ++k) which << (k ? ", " : "") << names[k];
    }
    NLPF_THROW(
        ErrorCode::INVALID_ARGUMENT, directory.string(), ": its points ran on ", labels_by_device.size(),
        " different devices (", which.str(),
        "); energy and latency are only comparable on one device model, so they never share a frontier. "
        "Run the sweep on one model (e.g. --slurm-option=--constraint=...), or merge runs of one model "
        "each with nlpf frontier");
  }
  NLPF_CHECK(!rows.empty(), ErrorCode::UNSUPPORTED, directory.string(), ": no point finished (",
             errors.size(), " refused, failed or not run; nlpf status ", directory.string(),
             "); the directory stays pending");
  const Phase2Inputs inputs = load_phase2_inputs(plan, {});
  const auto start_time = std::chrono::system_clock::from_time_t(
      static_cast<std::time_t>(plan_json.value("created_unix", int64_t{0})));
  const Phase2Finish finish =
      finish_phase2(plan, inputs, directory, rows, point_entries, errors, environment,
                    labels_by_device.begin()->first, gpu, start_time, std::chrono::system_clock::now());
  if (!quiet) log << "merged " << rows.size() << " of " << plan.points.size() << " point(s)\n";
  print_phase2_summary(out, plan, rows, errors.size(), finish, directory);
  return Phase2Result{directory, static_cast<int>(rows.size()), static_cast<int>(errors.size())};
}

namespace {

// Writes plan.json (the settings, every point and the command that runs it, the refusals).
void write_plan(const fs::path& directory, const Phase2Plan& plan, const json& errors, const std::string& exe,
                const std::string& task_device, std::time_t created) {
  json points = json::array();
  for (size_t i = 0; i < plan.points.size(); ++i) {
    const Phase2Point& p = plan.points[i];
    json parameters = json::object();
    for (const auto& [name, value] : p.parameters) parameters[name] = value;
    std::string command = shell_quote(exe) + " phase2 run-point " +
                          shell_quote(fs::absolute(directory).lexically_normal().string()) + " " +
                          std::to_string(i);
    if (!task_device.empty()) command += " --device " + task_device;
    points.push_back({{"index", i}, {"label", p.label}, {"parameters", parameters}, {"command", command}});
  }
  const json plan_json = {{"command", "phase2"},
                          {"settings", phase2_settings_json(plan.settings)},
                          {"points", points},
                          {"errors", errors},
                          {"executable", exe},
                          {"created", iso_time(std::chrono::system_clock::from_time_t(created))},
                          {"created_unix", static_cast<int64_t>(created)}};
  write_file_atomic(directory / kPlanFile, plan_json.dump(2) + "\n");
}

// The indices to run: every point neither done, refused, nor running or pending in the scheduler.
std::vector<int64_t> indices_to_run(const fs::path& directory, const json& errors, std::ostream& log,
                                    bool quiet) {
  std::set<std::string> refused;
  for (const json& e : errors) refused.insert(e.at("point").get<std::string>());
  const SweepStatus status = phase2_status(directory);
  std::vector<int64_t> indices;
  for (size_t i = 0; i < status.points.size(); ++i) {
    const PointStatus& p = status.points[i];
    if (p.state == PointState::DONE || refused.count(p.label)) continue;
    if ((p.state == PointState::RUNNING || p.state == PointState::PENDING) && !p.detail.empty()) {
      if (!quiet)
        log << p.label << ": " << point_state_name(p.state) << " (" << p.detail << "), not run again\n";
      continue;
    }
    indices.push_back(static_cast<int64_t>(i));
  }
  return indices;
}

std::string submit_slurm(const fs::path& directory, const Phase2Plan& plan,
                         const std::vector<int64_t>& indices, const std::string& exe,
                         const std::string& task_device, std::string& merge_job) {
  const Phase2Settings& s = plan.settings;
  NLPF_CHECK(on_path("sbatch"), ErrorCode::UNSUPPORTED,
             "--submit slurm: sbatch is not on PATH (run on a Slurm login node; the sweep directory ",
             directory.string(), " is planned: resubmit with --resume)");
  const fs::path slurm_dir = fs::absolute(directory / "slurm").lexically_normal();
  fs::create_directories(slurm_dir);
  const std::string dir = fs::absolute(directory).lexically_normal().string();
  const std::string tag = sweep_file_tag(s.sweep);
  std::string gres = s.slurm.gres.value_or(s.device == "cpu" ? "none" : "gpu:1");
  std::ostringstream common;
  if (!s.slurm.partition.empty()) common << "#SBATCH --partition=" << s.slurm.partition << "\n";
  if (!s.slurm.account.empty()) common << "#SBATCH --account=" << s.slurm.account << "\n";
  if (!s.slurm.time.empty()) common << "#SBATCH --time=" << s.slurm.time << "\n";
  std::ostringstream extra;
  for (const std::string& option : s.slurm.extra) extra << "#SBATCH " << option << "\n";
  std::ostringstream array;
  array << "#!/bin/bash\n"
        << "# nlpf phase2 " << tag << ": one array task per point of " << dir
        << "/plan.json (task K runs point K)\n"
        << "#SBATCH --job-name=nlpf-" << tag << "\n"
        << "#SBATCH --array=" << slurm_array_list(indices) << "\n"
        << "#SBATCH --output=" << slurm_dir.string() << "/%A_%a.out\n"
        << "#SBATCH --ntasks=1\n"
        << common.str();
  if (gres != "none") array << "#SBATCH --gres=" << gres << "\n";
  // The point must run alone on its device: a GPU is the task's own through --gres; on the CPU the whole
  // node is (RAPL measures the package, and other work would share the cores).
  if (s.device == "cpu") array << "#SBATCH --exclusive\n";
  array << extra.str() << "set -eu\n"
        << "exec " << shell_quote(exe) << " phase2 run-point " << shell_quote(dir)
        << " \"$SLURM_ARRAY_TASK_ID\"" << (task_device.empty() ? "" : " --device " + task_device) << "\n";
  write_file_atomic(slurm_dir / "array.sbatch", array.str());
  std::ostringstream merge;
  merge << "#!/bin/bash\n"
        << "# nlpf phase2 " << tag << ": finishes " << dir << " once the array is over (pareto.csv, plots)\n"
        << "#SBATCH --job-name=nlpf-" << tag << "-merge\n"
        << "#SBATCH --output=" << slurm_dir.string() << "/merge_%j.out\n"
        << "#SBATCH --ntasks=1\n"
        << common.str() << extra.str() << "set -eu\n"
        << "exec " << shell_quote(exe) << " phase2 merge " << shell_quote(dir) << "\n";
  write_file_atomic(slurm_dir / "merge.sbatch", merge.str());

  const auto submit = [&](const std::string& arguments) {
    std::string output;
    const int rc = run_command("sbatch --parsable " + arguments, output);
    std::string id = trim(output.substr(0, output.find(';')));
    NLPF_CHECK(rc == 0 && !id.empty() && std::all_of(id.begin(), id.end(), ::isdigit), ErrorCode::IO,
               "sbatch ", arguments, " failed (exit ", rc, "): ", trim(output), " (the sweep directory ", dir,
               " is planned: resubmit with --resume)");
    return id;
  };
  const std::string array_job = submit(shell_quote((slurm_dir / "array.sbatch").string()));
  merge_job =
      submit("--dependency=afterany:" + array_job + " " + shell_quote((slurm_dir / "merge.sbatch").string()));
  const fs::path submissions_path = slurm_dir / "submissions.json";
  std::error_code ec;
  json submissions =
      fs::is_regular_file(submissions_path, ec) ? read_json_file(submissions_path) : json::array();
  submissions.push_back({{"array_job_id", array_job},
                         {"merge_job_id", merge_job},
                         {"indices", indices},
                         {"submitted", iso_time(std::chrono::system_clock::now())}});
  write_file_atomic(submissions_path, submissions.dump(2) + "\n");
  return array_job;
}

// One process per device: each device runs the next point not yet started until none is left.
void run_on_devices(const fs::path& directory, const Phase2Plan& plan, const std::vector<int64_t>& indices,
                    const std::vector<std::string>& devices, const std::string& exe, std::ostream& log) {
  const Phase2Settings& s = plan.settings;
  fs::create_directories(tasks_dir(directory));
  std::deque<int64_t> queue(indices.begin(), indices.end());
  std::map<pid_t, std::pair<size_t, int64_t>> running;  // pid -> (device slot, point index)
  std::vector<bool> busy(devices.size(), false);
  const std::string dir = fs::absolute(directory).lexically_normal().string();
  size_t finished = 0;
  SigintGuard sigint_guard;
  const auto launch = [&](size_t slot, int64_t index) {
    const std::string& label = plan.points[static_cast<size_t>(index)].label;
    const std::string log_path = (tasks_dir(directory) / (label + ".log")).string();
    std::vector<std::string> args = {exe,        "phase2",     "run-point", dir, std::to_string(index),
                                     "--device", devices[slot]};
    if (s.quiet) args.push_back("--quiet");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    NLPF_CHECK(rc == 0, ErrorCode::IO, exe, ": cannot start a point process (", std::strerror(rc), ")");
    running[pid] = {slot, index};
    busy[slot] = true;
  };
  while (!queue.empty() || !running.empty()) {
    for (size_t slot = 0; slot < devices.size() && !queue.empty() && !interrupt_flag().load(); ++slot) {
      if (busy[slot]) continue;
      launch(slot, queue.front());
      queue.pop_front();
    }
    if (running.empty()) break;  // interrupted with nothing left running
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      NLPF_THROW(ErrorCode::IO, "waitpid: ", std::strerror(errno));
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const auto [slot, index] = it->second;
    running.erase(it);
    busy[slot] = false;
    ++finished;
    const std::string& label = plan.points[static_cast<size_t>(index)].label;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && point_done(directory, label);
    if (!s.quiet) {
      log << "[" << finished << "/" << indices.size() << "] " << label << " on " << devices[slot] << ": "
          << (ok ? "done" : "failed (" + (tasks_dir(directory) / (label + ".log")).string() + ")") << "\n";
    }
  }
  NLPF_CHECK(!interrupt_flag().load(), ErrorCode::INTERRUPTED, "interrupted by Ctrl-C; ", directory.string(),
             " stays pending: --resume ", directory.string(), " runs the points not done");
}

}  // namespace

Phase2Result run_phase2_scaled_out(const Phase2Settings& given) {
  std::ostream& out = given.out ? *given.out : std::cout;
  std::ostream& log = given.log ? *given.log : std::cerr;
  Phase2Settings s = given;
  NLPF_CHECK(s.submit.empty() || s.submit == "slurm", ErrorCode::INVALID_ARGUMENT,
             "--submit: expected slurm, got '", s.submit, "'");
  NLPF_CHECK(s.submit.empty() || s.devices.empty(), ErrorCode::INVALID_ARGUMENT,
             "--submit slurm and --devices exclude each other (Slurm gives each task its device)");
  if (s.submit.empty() && s.devices.empty()) s.devices = {s.device};  // --resume alone: on --device
  const std::string exe = s.executable.empty() ? own_executable() : s.executable;
  Phase2Plan plan = plan_phase2(s);

  // Devices are checked here only where the points run here; a Slurm task checks its own.
  json errors = json::array();
  std::string task_device;
  if (!s.devices.empty()) {
    std::map<std::string, std::vector<std::string>> names;
    for (const std::string& d : s.devices) {
      names[describe_device(choose_run_device(d, /*quiet=*/true, log)).name].push_back(d);
    }
    if (names.size() > 1) {
      std::ostringstream which;
      for (const auto& [name, list] : names) {
        which << (which.tellp() > 0 ? "; " : "") << name << ":";
        for (const std::string& d : list) which << " " << d;
      }
      NLPF_THROW(ErrorCode::INVALID_ARGUMENT, "--devices: different device models (", which.str(),
                 "); points of different models never share one frontier");
    }
    if (std::set<std::string>(s.devices.begin(), s.devices.end()).size() < s.devices.size() && !s.quiet) {
      log << "--devices lists a device twice: its points share it, so their latency and energy disturb each "
             "other\n";
    }
    const std::vector<Phase2Point> runnable = refuse_unsupported_points(
        plan, describe_device(choose_run_device(s.devices[0], true, log)), errors, log);
    NLPF_CHECK(!runnable.empty(), ErrorCode::UNSUPPORTED, "phase2: every point was refused on ", s.devices[0],
               "; nothing was run");
  } else if (s.device.rfind("cuda:", 0) == 0) {
    task_device = "cuda";  // Slurm hands each task its GPU as the first visible one
    if (!s.quiet)
      log << "--device " << s.device << " under Slurm: each task runs on the GPU Slurm gives it\n";
  } else if (s.device == "cuda") {
    task_device = "cuda";
  }

  fs::path directory;
  if (!s.resume_directory.empty()) {
    directory = s.resume_directory;
    const json stored = read_plan(directory);
    const std::vector<std::string> stored_labels = plan_labels(stored);
    std::vector<std::string> labels;
    for (const Phase2Point& p : plan.points) labels.push_back(p.label);
    NLPF_CHECK(labels == stored_labels, ErrorCode::INVALID_ARGUMENT, "--resume ", directory.string(),
               ": this command plans other points than its plan.json (", labels.size(), " vs ",
               stored_labels.size(), "); repeat the command that made it");
    NLPF_CHECK(
        comparable_settings(phase2_settings_json(s)) == comparable_settings(stored.at("settings")),
        ErrorCode::INVALID_ARGUMENT, "--resume ", directory.string(),
        ": this command's settings differ from its plan.json's (compare with plan.json's \"settings\"); "
        "repeat the command that made it");
    s.runs_dir = stored.at("settings").value("runs_dir", s.runs_dir);
    plan.settings = s;
    std::error_code ec;
    fs::remove(directory / "run.json", ec);  // pending again until the next merge
    write_plan(directory, plan, errors, exe, task_device,
               static_cast<std::time_t>(stored.value("created_unix", int64_t{0})));
  } else {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    fs::create_directories(s.runs_dir);
    StagedDirectory staged(fs::path(s.runs_dir) / phase2_run_name(s.sweep, now));
    write_plan(staged.path(), plan, errors, exe, task_device, now);
    staged.commit();
    directory = staged.final_path();
    write_plan(directory, plan, errors, exe, task_device, now);  // the commands name the final path
  }

  const std::vector<int64_t> indices = indices_to_run(directory, errors, log, s.quiet);
  if (s.submit == "slurm") {
    if (indices.empty()) {
      if (!s.quiet) log << "every point is done or under way; merging\n";
      return merge_phase2(directory, s.quiet, out, log);
    }
    std::string merge_job;
    const std::string array_job = submit_slurm(directory, plan, indices, exe, task_device, merge_job);
    out << "submitted " << indices.size() << " point(s) as Slurm job array " << array_job << " (merge job "
        << merge_job << ")\nrun directory (pending until merged): " << directory.string()
        << "\nfollow it with: nlpf status " << directory.string() << "\n";
    return Phase2Result{directory, 0, 0};
  }
  run_on_devices(directory, plan, indices, s.devices, exe, log);
  return merge_phase2(directory, s.quiet, out, log);
}

}  // namespace nlpf
