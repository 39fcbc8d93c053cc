// nlpf phase2 max-sequence-length|layers|precision|padding|batch-size|grid and the run_phase_2_* aliases
// (the study's three, and the same spelling for the two sweeps it did not have); the scale-out options
// (--submit slurm, --devices, --resume), the hidden steps their processes run (run-point, merge), nlpf
// status.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>

#include "backend/precision.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "experiment/phase2.h"
#include "experiment/phase2_scale_out.h"
#include "text/batching.h"

namespace nlpf::cli {
namespace {

// Registers one sweep's options on `sub`; `sweep` decides which lists are accepted. Options bind straight
// into the library's Phase2Settings.
void add_sweep(CLI::App& sub, SweepKind sweep, Action& action) {
  auto settings = std::make_shared<Phase2Settings>();
  Phase2Settings& o = *settings;
  o.sweep = sweep;
  sub.add_option(flag_names("baseline-model-directory"), o.baseline_model_directory,
                 "Fine-tuned model directory (Phase 1's best_model/)")
      ->required();
  add_data_options(sub, o.data);
  const bool grid = sweep == SweepKind::GRID;
  if (sweep == SweepKind::MAX_SEQUENCE_LENGTH || grid) {
    auto* opt = sub.add_option(flag_names("sequence-lengths"), o.sequence_lengths,
                               "Max sequence lengths to sweep, counting [CLS] and [SEP]")
                    ->check(CLI::Range(int64_t{2}, int64_t{4096}));
    if (!grid) opt->default_str("128 96 64 48 40 32 24 16");
  }
  if (sweep == SweepKind::LAYERS || grid) {
    auto* opt = sub.add_option(flag_names("num-layers"), o.num_layers, "Encoder layers kept (the first k)")
                    ->check(CLI::Range(int64_t{1}, int64_t{1000}));
    if (!grid) opt->default_str("every other count from all layers down to 2 (12 10 8 6 4 2 for bert-base)");
    sub.add_option(flag_names("refit-epochs"), o.refit_epochs,
                   "Re-fine-tune each truncated model for N epochs with the baseline's recipe")
        ->capture_default_str()
        ->check(CLI::Range(0, 100));
  }
  if (sweep == SweepKind::PRECISION || grid) {
    auto* opt = sub.add_option(flag_names("precisions"), o.precisions, "Inference precisions")
                    ->check(CLI::IsMember(precision_names()));
    if (!grid) opt->default_str("fp32 fp16 fp8");
    sub.add_flag(flag_names("skip-failed-precisions"), o.skip_failed_precisions,
                 "Record refused or failed precisions in errors.json and go on");
    sub.add_option(flag_names("calibration-batches"), o.calibration_batches,
                   "fp8: calibrate activation scales (amax / 448) on this many batches of --eval-batch-size "
                   "training examples (a seeded choice, on the CPU fp32 model; stored in the run directory)")
        ->capture_default_str()
        ->check(positive());
    sub.add_option(flag_names("fp8-weight-scales"), o.fp8_weight_scales,
                   "fp8: quantise each weight with one E4M3 scale (tensor) or one per output channel "
                   "(channel); recorded in run.json and each fp8 point's metrics.json")
        ->capture_default_str()
        ->check(CLI::IsMember({"tensor", "channel"}));
  }
  if (sweep == SweepKind::PADDING || grid) {
    auto* opt = sub.add_option(flag_names("paddings"), o.paddings, "Evaluation paddings to sweep")
                    ->check(CLI::IsMember(padding_names()));
    if (!grid) opt->default_str("max-length longest bucketed");
  } else {
    add_padding_option(sub, o.padding);
  }
  if (sweep == SweepKind::BATCH_SIZE || grid) {
    // --eval-batch-sizes: the grid's name for the list before the batch-size sweep existed.
    auto* opt = sub.add_option(flag_names("batch-sizes") + (grid ? "," + flag_names("eval-batch-sizes") : ""),
                               o.batch_sizes, "Evaluation batch sizes to sweep")
                    ->check(positive());
    if (!grid) opt->default_str("1 8 32 64 256");
  }
  if (sweep != SweepKind::MAX_SEQUENCE_LENGTH) {
    sub.add_option(flag_names("max-sequence-length"), o.max_sequence_length,
                   grid ? "Tokens per example where --sequence-lengths is not given (default: the baseline's)"
                        : "Tokens per example (default: the baseline's Phase 1 length, else 128)")
        ->check(CLI::Range(int64_t{2}, int64_t{4096}));
  }
  if (sweep != SweepKind::BATCH_SIZE) {
    sub.add_option(flag_names("eval-batch-size"), o.eval_batch_size,
                   grid ? "Evaluation batch size where --batch-sizes is not given" : "Evaluation batch size")
        ->capture_default_str()
        ->check(positive());
  }
  sub.add_option("--device", o.device, "auto, cpu, cuda or cuda:N")
      ->capture_default_str()
      ->check(device_validator());
  sub.add_option(flag_names("runs-dir"), o.runs_dir, "Where run directories are created")
      ->capture_default_str();
  add_common_options(sub, o.data, o.protocol, o.quiet);
  // Scale-out (experiment/phase2_scale_out.h).
  const char* kScaleOut = "Scale-out (Slurm job arrays, several devices)";
  sub.add_option("--submit", o.submit, "slurm: one job-array task per point, then a merge job")
      ->check(CLI::IsMember({"slurm"}))
      ->group(kScaleOut);
  sub.add_option(flag_names("slurm-partition"), o.slurm.partition, "sbatch --partition")->group(kScaleOut);
  sub.add_option(flag_names("slurm-account"), o.slurm.account, "sbatch --account")->group(kScaleOut);
  sub.add_option(flag_names("slurm-time"), o.slurm.time,
                 "sbatch --time of each point's task (e.g. 30, 2:00:00)")
      ->group(kScaleOut);
  sub.add_option(flag_names("slurm-gres"), o.slurm.gres,
                 "sbatch --gres of each point's task (default gpu:1 for cuda or auto, none for cpu; 'none')")
      ->group(kScaleOut);
  sub.add_option(flag_names("slurm-option"), o.slurm.extra,
                 "Passed to sbatch as an #SBATCH line, repeatable (write --slurm-option=--qos=high)")
      ->allow_extra_args(false)
      ->group(kScaleOut);
  sub.add_option("--devices", o.devices,
                 "Run points in parallel, one process per device: cuda:0,cuda:1 (same files as --submit)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(device_validator())
      ->group(kScaleOut);
  sub.add_option(
         "--resume", o.resume_directory,
         "A sweep directory planned by --submit or --devices: run only its points not done, then merge")
      ->check(CLI::ExistingDirectory)
      ->group(kScaleOut);
  sub.callback([&action, settings] {
    action = [settings] {
      run_phase2(*settings);
      return 0;
    };
  });
}

struct SweepName {
  const char* name;
  const char* alias;  // the study's top-level command, or nullptr
  SweepKind kind;
  const char* help;
};

constexpr SweepName kSweeps[] = {
    {"max-sequence-length", "run_phase_2_max_sequence_length", SweepKind::MAX_SEQUENCE_LENGTH,
     "Sweep the maximum sequence length"},
    {"layers", "run_phase_2_layers", SweepKind::LAYERS, "Sweep the number of encoder layers kept"},
    {"precision", "run_phase_2_precision", SweepKind::PRECISION, "Sweep the inference precision"},
    {"padding", "run_phase_2_padding", SweepKind::PADDING, "Sweep how evaluation batches are padded"},
    {"batch-size", "run_phase_2_batch_size", SweepKind::BATCH_SIZE,
     "Sweep the evaluation batch size (plots p99 batch latency beside the cost)"},
    {"grid", nullptr, SweepKind::GRID,
     "Cross lengths x layers x precisions x paddings x batch sizes into one frontier"},
};

// The hidden steps of a scaled-out sweep: what one Slurm task (or --devices process) and the merge job run.
void add_scale_out_steps(CLI::App& phase2, Action& action) {
  struct PointOptions {
    std::string directory;
    int64_t index = 0;
    std::string device;
    bool quiet = false;
  };
  auto point = std::make_shared<PointOptions>();
  CLI::App* run_point = phase2.add_subcommand("run-point", "Measure point K of a planned sweep directory");
  run_point->group("");  // hidden: the commands of plan.json and the sbatch scripts
  run_point->add_option("directory", point->directory, "Sweep directory (plan.json)")->required();
  run_point->add_option("index", point->index, "Point index in plan.json")->required();
  run_point->add_option("--device", point->device, "Device (default: the plan's)")->check(device_validator());
  run_point->add_flag("--quiet,-q", point->quiet, "No progress output");
  run_point->callback([&action, point] {
    action = [point] {
      run_phase2_point(point->directory, point->index, point->device, point->quiet, std::cerr);
      return 0;
    };
  });
  auto merge = std::make_shared<PointOptions>();
  CLI::App* merge_app = phase2.add_subcommand("merge", "Finish a planned sweep directory from its points");
  merge_app->group("");
  merge_app->add_option("directory", merge->directory, "Sweep directory (plan.json)")->required();
  merge_app->add_flag("--quiet,-q", merge->quiet, "No progress output");
  merge_app->callback([&action, merge] {
    action = [merge] {
      merge_phase2(merge->directory, merge->quiet, std::cout, std::cerr);
      return 0;
    };
  });
}

}  // namespace

void register_status(CLI::App& app, Action& action) {
  auto directory = std::make_shared<std::string>();
  CLI::App* status = app.add_subcommand(
      "status", "Points done, pending, running and failed of a sweep run with --submit slurm or --devices");
  status->add_option("run_dir", *directory, "Sweep directory")->required()->check(CLI::ExistingDirectory);
  status->callback([&action, directory] {
    action = [directory] {
      print_phase2_status(phase2_status(*directory), std::cout);
      return 0;
    };
  });
}

void register_phase2(CLI::App& app, Action& action) {
  CLI::App* phase2 = app.add_subcommand("phase2", "Sweep efficiency techniques from a fine-tuned baseline");
  phase2->require_subcommand(1);
  for (const SweepName& s : kSweeps) {
    CLI::App* sub = phase2->add_subcommand(s.name, s.help);
    std::string underscored = s.name;
    std::replace(underscored.begin(), underscored.end(), '-', '_');
    if (underscored != s.name) sub->alias(underscored);
    add_sweep(*sub, s.kind, action);
    if (s.alias != nullptr) {
      // The study ran each sweep as its own top-level command (padding and batch size are ours, same style).
      CLI::App* top = app.add_subcommand(s.alias, std::string(s.help) + " (alias of phase2 " + s.name + ")");
      top->group("Study aliases");
      add_sweep(*top, s.kind, action);
    }
  }
  add_scale_out_steps(*phase2, action);
}

}  // namespace nlpf::cli
