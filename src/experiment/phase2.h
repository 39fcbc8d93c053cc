// `nlpf phase2`: sweeps from a fine-tuned baseline (DESIGN §2, §3, §5): maximum sequence length, encoder
// layers kept (first k, no retraining unless refit_epochs), inference precision, evaluation padding,
// evaluation batch size, or any of them crossed (grid).
// Every point is measured with the protocol (measure/protocol.h) into its own folder; pareto.csv holds
// one row per measured point with the true frontier, errors.json the refused or failed points. The run
// directory is staged under a temporary name and renamed only when complete.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "experiment/data_settings.h"
#include "measure/protocol.h"
#include "model/bert_config.h"
#include "text/batching.h"

namespace nlpf {

enum class SweepKind { MAX_SEQUENCE_LENGTH, LAYERS, PRECISION, PADDING, BATCH_SIZE, GRID };

// sbatch settings of `--submit slurm` (phase2_scale_out.h).
struct SlurmOptions {
  std::string partition;  // --slurm-partition (empty: the cluster's default)
  std::string account;    // --slurm-account
  std::string time;       // --slurm-time, per array task (Slurm's syntax: 30, 2:00:00, 1-00:00:00)
  // --slurm-gres; unset: gpu:1 for a CUDA (or auto) device, none for the CPU; "none": no --gres line.
  std::optional<std::string> gres;
  std::vector<std::string> extra;  // --slurm-option, passed through as "#SBATCH <option>" lines
};

struct Phase2Settings {
  SweepKind sweep = SweepKind::GRID;
  std::string baseline_model_directory;  // Phase 1's best_model/ (or any fine-tuned HF directory)
  // Where evaluation (and, with refit_epochs, training) data come from. When no path is given, the
  // baseline's run.json (best_model/../run.json) names them, else the cached SST-2.
  DataSettings data;
  // The swept values. In a single sweep only its own list is read, and an empty one means the default list
  // (default_sequence_lengths, default_num_layers, fp32 fp16 fp8, max-length longest bucketed,
  // default_batch_sizes); in a grid only the lists given are crossed (at least one), the rest take the fixed
  // value: max_sequence_length, every layer, fp32, padding, eval_batch_size.
  std::vector<int64_t> sequence_lengths;
  std::vector<int64_t> num_layers;
  std::vector<std::string> precisions;
  std::vector<std::string> paddings;  // padding_name spellings
  std::vector<int64_t> batch_sizes;   // evaluation batch sizes
  // Fixed length of the layers and precision sweeps (and of a grid without --sequence-lengths); unset:
  // the baseline's Phase 1 max_sequence_length from its run.json, else 128.
  std::optional<int64_t> max_sequence_length;
  int64_t eval_batch_size = 64;  // fixed batch size of the other sweeps
  // Fixed padding of the other sweeps (text/batching.h): max-length (the study's), longest or bucketed.
  std::string padding = padding_name(kDefaultEvalPadding);
  int refit_epochs = 0;  // re-fine-tune each truncated model this many epochs (the baseline's recipe)
  // FP8 activation calibration (DESIGN §5, docs/ENGINE.md): the amax of every encoder GEMM input over
  // calibration_batches x eval_batch_size training examples (a seeded choice; the fixed --eval-batch-size, so
  // a batch-size sweep calibrates its fp8 points alike), on the CPU fp32 model of each (length, layers kept).
  int64_t calibration_batches = 8;
  // FP8 weight scales (core/fp8.h: fp8_weight_scales_name): "tensor" (one per weight) or "channel" (one per
  // output channel), for every fp8 point of the sweep.
  std::string fp8_weight_scales = "tensor";
  bool skip_failed_precisions = false;
  std::string device = "auto";
  std::string runs_dir = "runs";
  ProtocolOptions protocol;
  // Scale-out (phase2_scale_out.h): with any of these the sweep directory is planned first (plan.json), each
  // point runs in its own process, and a merge finishes the directory.
  std::string submit;                // "slurm": one job-array task per point, then a merge job
  SlurmOptions slurm;                // sbatch settings of submit == "slurm"
  std::vector<std::string> devices;  // --devices cuda:0,cuda:1: one process per device, points in parallel
  std::string resume_directory;      // --resume DIR: the same sweep again, running only its points not done
  std::string executable;            // the nlpf binary that runs a point (empty: this process's own)
  bool quiet = false;
  std::ostream* out = nullptr;                             // summary (nullptr: std::cout)
  std::ostream* log = nullptr;                             // notices and per-point lines (nullptr: std::cerr)
  std::function<void(const std::string& label)> on_point;  // before each point is built (tests raise Ctrl-C)
};

struct Phase2Result {
  std::filesystem::path run_directory;
  int points_measured = 0;
  int points_failed = 0;  // refused or failed, in errors.json
};

// Errors, all before any measurement unless said: INVALID_ARGUMENT naming the option (empty list, a
// length above max_position_embeddings, more layers than the model has, an unknown padding, a batch size
// below 1, a missing baseline), UNSUPPORTED for a CUDA device or a precision the device cannot run (without
// skip_failed_precisions), IO, NUMERIC (passes disagree: a bug), INTERRUPTED on Ctrl-C (nothing is left
// behind).
Phase2Result run_phase2(const Phase2Settings& settings);
// run_phase2 with submit, devices or resume_directory set (phase2_scale_out.cc).
Phase2Result run_phase2_scaled_out(const Phase2Settings& settings);

// 128 96 64 48 40 32 24 16, without lengths above the model's max_position_embeddings.
std::vector<int64_t> default_sequence_lengths(const BertConfig& config);
// Every other layer count from all layers down to 2: 12 10 8 6 4 2 for bert-base (the study), 6 4 2 for
// all-MiniLM-L6-v2.
std::vector<int64_t> default_num_layers(const BertConfig& config);
// 1 8 32 64 256: from one request at a time to a large serving batch (issue 14's list).
std::vector<int64_t> default_batch_sizes();

// "<timestamp>_phase_2_sequence_length_sweep", "..._layers_sweep", "..._precision_sweep",
// "..._padding_sweep", "..._batch_size_sweep", "..._grid".
std::string phase2_run_name(SweepKind sweep, std::time_t time);
// "max_sequence_length", "layers", "precision", "padding", "batch_size", "grid": the <sweep> of
// energy_accuracy_<sweep>.png.
std::string sweep_file_tag(SweepKind sweep);

}  // namespace nlpf
