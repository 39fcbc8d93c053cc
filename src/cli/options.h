// Option structs filled by the command line (DESIGN §2) and the functions that register them with CLI11.
// Defaults are the reference recipe. Every long flag also accepts the study's underscore spelling.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace nlpf::cli {

struct CommonOptions {
  std::optional<int64_t> max_train_examples;
  std::optional<int64_t> max_eval_examples;
  int trials = 5;
  double min_trial_seconds = 5.0;
  double idle_seconds = 3.0;
  double cooldown_seconds = 0.0;
  bool quiet = false;
};

struct DataOptions {
  std::string data_dir;
  std::string train_file;
  std::string eval_file;
  std::string task = "sst2";
  std::string text_column;
  std::string label_column;
};

struct Phase1Options {
  std::string model = "bert-base-uncased";
  DataOptions data;
  int64_t max_sequence_length = 128;
  int64_t batch_size = 32;
  int epochs = 2;
  double learning_rate = 3e-5;
  double weight_decay = 0.01;
  double warmup_ratio = 0.06;
  uint64_t seed = 42;
  int64_t eval_batch_size = 64;
  std::string device = "auto";
  std::string train_precision = "fp32";
  std::string runs_dir = "runs";
  CommonOptions common;
};

enum class SweepKind { MAX_SEQUENCE_LENGTH, LAYERS, PRECISION, GRID };

struct Phase2Options {
  SweepKind sweep = SweepKind::GRID;
  std::string baseline_model_directory;
  DataOptions data;
  std::vector<int64_t> sequence_lengths;
  std::vector<int64_t> num_layers;
  std::vector<std::string> precisions;
  std::vector<int64_t> eval_batch_sizes;
  int64_t max_sequence_length = 128;
  int64_t eval_batch_size = 64;
  int refit_epochs = 0;
  bool skip_failed_precisions = false;
  std::string device = "auto";
  std::string runs_dir = "runs";
  CommonOptions common;
};

// Adds "--name" together with the study's "--name_with_underscores" spelling.
std::string flag_names(const std::string& dashed);

void add_common_options(CLI::App& app, CommonOptions& options);
void add_data_options(CLI::App& app, DataOptions& options);
// Validator for --device: auto, cpu, cuda or cuda:N.
const CLI::Validator& device_validator();
// Validator for counts and rates that must be > 0, with a message naming the value.
const CLI::Validator& positive();
// The precision names known to every device's capability check (DESIGN §5).
const std::vector<std::string>& known_precisions();

}  // namespace nlpf::cli
