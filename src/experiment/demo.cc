// run_demo: synthetic task -> phase1 -> phase2 length / layers / precision -> frontier, inside one staged
// directory. The settings are chosen for a 2-core CPU: Phase 1 trains about a minute, each point is measured
// with 3 trials of at least 0.3 s (the real protocol's shape, not its 5 x 5 s).
#include "experiment/demo.h"

#include <chrono>
#include <iostream>
#include <sstream>

#include "core/file_util.h"
#include "experiment/frontier.h"
#include "experiment/phase1.h"
#include "experiment/phase2.h"
#include "experiment/run_files.h"
#include "experiment/synthetic_task.h"

namespace nlpf {

namespace {

ProtocolOptions demo_protocol() {
  ProtocolOptions p;
  p.trials = 3;
  p.min_trial_seconds = 0.3;
  p.idle_seconds = 0.3;
  p.warmup_min_seconds = 0.1;
  return p;
}

}  // namespace

std::string demo_run_name(std::time_t time) {
  return run_timestamp(time) + "_demo";
}

std::filesystem::path run_demo(const DemoSettings& s) {
  std::ostream& out = s.out ? *s.out : std::cout;
  std::ostream& log = s.log ? *s.log : std::cerr;
  const auto start = std::chrono::system_clock::now();
  std::filesystem::create_directories(s.runs_dir);
  StagedDirectory demo(std::filesystem::path(s.runs_dir) /
                       demo_run_name(std::chrono::system_clock::to_time_t(start)));
  const std::filesystem::path task = demo.path() / "task";
  SyntheticTaskOptions task_options;
  task_options.seed = s.seed;
  write_synthetic_task(task, task_options);
  if (!s.quiet) {
    log << "demo: synthetic sentiment task (" << task_options.train_examples << " train / "
        << task_options.eval_examples << " dev sentences), tiny BERT from random initialisation\n";
  }

  std::ostringstream quiet_out;  // the sub-runs' own summaries; the demo prints one of its own
  Phase1Settings p1;
  p1.model = (task / kSyntheticModelName).string();
  p1.init = "random";
  p1.data.data_dir = (task / "data").string();
  p1.data.task = "synthetic";
  p1.max_sequence_length = 32;
  p1.batch_size = 32;
  p1.epochs = 3;
  p1.learning_rate = 1e-3;
  p1.seed = s.seed;
  p1.device = "cpu";
  p1.runs_dir = demo.path().string();
  p1.protocol = demo_protocol();
  p1.quiet = s.quiet;
  p1.out = &quiet_out;
  p1.log = &log;
  if (!s.quiet) log << "demo: phase 1 (3 epochs)\n";
  const Phase1Result baseline = run_phase1(p1);

  const auto sweep = [&](SweepKind kind) {
    Phase2Settings p2;
    p2.sweep = kind;
    p2.data.task = "synthetic";
    p2.baseline_model_directory = (baseline.run_directory / "best_model").string();
    p2.sequence_lengths = {32, 24, 16, 12, 8};
    p2.num_layers = {4, 3, 2, 1};
    p2.precisions = {"fp32", "bf16", "fp16", "fp8"};
    p2.skip_failed_precisions = true;  // what this CPU cannot run goes to errors.json
    p2.device = "cpu";
    p2.runs_dir = demo.path().string();
    p2.protocol = demo_protocol();
    p2.quiet = s.quiet;
    p2.out = &quiet_out;
    p2.log = &log;
    if (!s.quiet) log << "demo: phase 2 " << sweep_file_tag(kind) << " sweep\n";
    return run_phase2(p2).run_directory;
  };
  const std::filesystem::path lengths = sweep(SweepKind::MAX_SEQUENCE_LENGTH);
  const std::filesystem::path layers = sweep(SweepKind::LAYERS);
  const std::filesystem::path precisions = sweep(SweepKind::PRECISION);

  FrontierSettings f;
  f.run_directories = {baseline.run_directory, lengths, layers, precisions};
  f.runs_dir = demo.path().string();
  f.out = &quiet_out;
  const std::filesystem::path frontier = merge_frontier(f);
  demo.commit();

  const auto relative = [&](const std::filesystem::path& p) {
    return (demo.final_path() / p.filename()).string();
  };
  const double seconds = std::chrono::duration<double>(std::chrono::system_clock::now() - start).count();
  out << "demo done in " << static_cast<int>(seconds + 0.5) << " s: " << demo.final_path().string() << "\n"
      << "  phase 1 (best epoch " << baseline.best_epoch << ", dev accuracy "
      << (baseline.best_accuracy ? csv_cell(*baseline.best_accuracy) : std::string("n/a"))
      << "): " << relative(baseline.run_directory) << "\n"
      << "  phase 2 sweeps: " << relative(lengths) << "\n                  " << relative(layers)
      << "\n                  " << relative(precisions) << "\n"
      << "  combined frontier: " << relative(frontier) << "/pareto.csv\n";
  return demo.final_path();
}

}  // namespace nlpf
