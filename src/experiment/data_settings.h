// Where a run's examples come from (DESIGN §2: --data-dir, --train-file/--eval-file, --task, columns,
// --max-train/eval-examples), shared by phase1, phase2 and inspect. The command line binds its options
// straight into DataSettings, so the library and the CLI hold one copy of each field.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "text/dataset.h"

namespace nlpf {

struct DataSettings {
  std::string data_dir;  // GLUE layout (train.tsv, dev.tsv); with every path empty, the cached SST-2
  std::string train_file;
  std::string eval_file;
  std::string task = "sst2";
  std::string text_column;   // empty: the reader's default ("sentence")
  std::string label_column;  // empty: "label"
  std::optional<int64_t> max_train_examples;
  std::optional<int64_t> max_eval_examples;
};

struct DataFiles {
  std::filesystem::path train;  // empty when only an evaluation file was given (phase2)
  std::filesystem::path eval;
};

// INVALID_ARGUMENT naming the option for inconsistent combinations; UNSUPPORTED for a task other than sst2.
// `need_train`: phase1 needs both splits, phase2 only the evaluation split.
void check_data_settings(const DataSettings& data, bool need_train);

// The files to read: --train-file/--eval-file, else the GLUE files of --data-dir, else the cached SST-2
// (fetched when missing, offline-aware: fetch/fetch.h). Without `need_train` the training file is neither
// looked up nor required (DataFiles::train may then be empty).
DataFiles locate_data(const DataSettings& data, bool need_train);

// Reads one split with the settings' columns, keeping the first `limit` examples when given.
Dataset read_split(const std::filesystem::path& path, const DataSettings& data, int64_t num_labels,
                   std::optional<int64_t> limit);

}  // namespace nlpf
