// `nlpf phase1`: fine-tune a BERT classifier and measure it (DESIGN §2, §3, §6). The run directory
// runs/<YYYY-MM-DD_HH-MM-SS>_phase_1_baseline/ is staged under a temporary name and renamed only when every
// file is written, so an interrupted or failed run never looks finished.
// Every epoch's model is measured with the full protocol after training (each epoch is a row of pareto.csv
// with its own cost), with the training state freed first, so peak_memory_mb is that of inference alone.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

#include "experiment/data_settings.h"
#include "measure/protocol.h"
#include "text/batching.h"
#include "train/optimizer.h"

namespace nlpf {

struct Phase1Settings {
  std::string model = "bert-base-uncased";  // local Hugging Face directory or hub name
  // "pretrained": the checkpoint's weights (a missing classifier is initialised); "random": HF's
  // initialisation from config.json and the seed (the model directory needs no weights).
  std::string init = "pretrained";
  DataSettings data;
  int64_t max_sequence_length = 128;
  int64_t batch_size = 32;
  int epochs = 2;
  double learning_rate = 3e-5;
  double weight_decay = 0.01;
  double warmup_ratio = 0.06;
  uint64_t seed = 42;
  int64_t eval_batch_size = 64;
  // How evaluation batches are padded (text/batching.h): max-length, longest or bucketed; the per-epoch
  // evaluation and the measured passes use the same.
  std::string padding = padding_name(kDefaultEvalPadding);
  std::string device = "auto";
  std::string train_precision = "fp32";
  std::string runs_dir = "runs";
  ProtocolOptions protocol;
  bool quiet = false;
  std::ostream* out = nullptr;                     // summary (nullptr: std::cout)
  std::ostream* log = nullptr;                     // notices such as the chosen device (nullptr: std::cerr)
  std::function<void(const StepResult&)> on_step;  // after every training step (tests)
};

struct Phase1Result {
  std::filesystem::path run_directory;
  int best_epoch = 0;
  std::optional<double> best_accuracy;
};

// Errors: UNSUPPORTED before any work for a CUDA --device without CUDA, or a --train-precision the device
// cannot train in (tf32, bf16 and fp16 need a GPU);
// INVALID_ARGUMENT naming the option or file (an unknown --padding before any work); IO; NUMERIC;
// INTERRUPTED on Ctrl-C (nothing is left behind).
Phase1Result run_phase1(const Phase1Settings& settings);

// "2026-11-28_22-58-08_phase_1_baseline" for a local time.
std::string phase1_run_name(std::time_t time);

}  // namespace nlpf
