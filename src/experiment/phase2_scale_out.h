// A phase-2 sweep spread over processes (DESIGN §2, §3): a Slurm job array (`--submit slurm`, one task per
// point, then a merge job that depends on the array) or one process per local device (`--devices`). Both
// write the same sweep directory, pending until merged:
//   plan.json                  the settings, each point (index, label, parameters, the command that runs it),
//                              the points refused before any work
//   <label>/                   a finished point: staged, metrics.json written last, renamed into place
//   tasks/<label>.running.json a point being measured (host, pid, Slurm job); left behind by a killed task
//   tasks/<label>.failed.json  the last failure of a point (its error, stage, code)
//   tasks/<label>.log          the point's output (--devices; Slurm's is slurm/<job>_<task>.out)
//   slurm/array.sbatch, slurm/merge.sbatch, slurm/submissions.json (job ids and the points each array ran)
//   pareto.csv, plots, errors.json, run.json   written by the merge, run.json last (the directory is
//   finished)
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiment/phase2.h"

namespace nlpf {

// `nlpf phase2 run-point DIR K`: measures point K of DIR/plan.json into DIR/<label>/ on `device` (empty:
// the plan's --device). Does nothing when the point is done. On failure writes tasks/<label>.failed.json and
// rethrows. NLPF_FAIL_POINTS (comma-separated labels) makes the named points fail just before their folder
// is renamed into place: the tests' way of making a point fail.
void run_phase2_point(const std::filesystem::path& directory, int64_t index, const std::string& device,
                      bool quiet, std::ostream& log);

// `nlpf phase2 merge DIR`: the finished points into pareto.csv, plots, errors.json (every point refused,
// failed or not finished) and run.json. INVALID_ARGUMENT when points ran on different devices (GPU or CPU
// models), naming them; UNSUPPORTED when no point finished (the directory stays pending).
Phase2Result merge_phase2(const std::filesystem::path& directory, bool quiet, std::ostream& out,
                          std::ostream& log);

enum class PointState { DONE, PENDING, RUNNING, FAILED };
const char* point_state_name(PointState state);  // "done", "pending", "running", "failed"

struct PointStatus {
  std::string label;
  PointState state = PointState::PENDING;
  std::string detail;  // host and job, the error, or the scheduler's state
};

struct SweepStatus {
  std::filesystem::path directory;
  std::vector<PointStatus> points;  // in plan order
  bool merged = false;              // run.json is there
  std::string scheduler;            // where job states came from: "sacct", "squeue" or "none"
};

// From the files, and from sacct (else squeue) for the jobs of slurm/submissions.json where they answer.
SweepStatus phase2_status(const std::filesystem::path& directory);
void print_phase2_status(const SweepStatus& status, std::ostream& out);

// `--array=` of the points to run: "0-3,5,7-8" (indices sorted, runs collapsed).
std::string slurm_array_list(const std::vector<int64_t>& indices);
// Task indices of a Slurm array expression "12_[0-3,5%2]" or "12_4" (job id 12); empty if it is neither.
std::vector<int64_t> parse_slurm_array_tasks(const std::string& job_id, const std::string& array_job_id);

// plan.json's settings block and back (every field that decides what a point measures).
nlohmann::json phase2_settings_json(const Phase2Settings& settings);
Phase2Settings phase2_settings_from_json(const nlohmann::json& json);

}  // namespace nlpf
