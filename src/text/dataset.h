// Dataset readers for text classification: GLUE TSV (tab-split, no quoting), CSV (RFC 4180 quoting) and
// JSONL (one object per line). Columns are found by header/field name; labels are integers in
// [0, num_labels). Every error names FILE:LINE (1-based, the line where the offending row or field begins).
// Blank lines: skipped in JSONL; in TSV/CSV accepted only at the end of the file (a blank row in the
// middle is an error, since it is either corruption or an empty example, and GLUE has none).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace nlpf {

// Label of an example from a split without labels (ReaderOptions::allow_missing_labels).
inline constexpr int32_t kNoLabel = -1;

struct Example {
  std::string text;
  std::string text_b;  // second sentence of a pair task; empty when the task has one sentence
  int32_t label = kNoLabel;
  int64_t line = 0;  // 1-based line in the source where the example's row begins
};

struct Dataset {
  std::string path;  // file path, or the display name of an in-memory source
  std::vector<Example> examples;
  int32_t num_labels = 2;
  bool has_text_b = false;  // a pair task (ReaderOptions::text_b_column was set), even where text_b is empty
  int64_t size() const { return static_cast<int64_t>(examples.size()); }
};

enum class DatasetFormat { AUTO, TSV, CSV, JSONL };

struct ReaderOptions {
  DatasetFormat format = DatasetFormat::AUTO;  // AUTO: by extension (.tsv, .csv, .jsonl/.json/.ndjson)
  std::string text_column = "sentence";
  std::string text_b_column;  // empty: single-sentence task
  std::string label_column = "label";
  int32_t num_labels = 2;
  // Test splits have no labels: the label column may then be absent (or a value empty / JSON null), and
  // such examples get kNoLabel. Labels that are present are still validated.
  bool allow_missing_labels = false;
};

// The format AUTO stands for with this file name; throws Error(INVALID_ARGUMENT) for other extensions.
DatasetFormat format_from_path(const std::filesystem::path& path);
const char* dataset_format_name(DatasetFormat format);

// Reads a whole dataset file. Throws Error(IO) for a missing/unreadable file or a directory, and
// Error(INVALID_ARGUMENT) for malformed contents, bad labels, invalid UTF-8 text or no examples.
Dataset read_dataset(const std::filesystem::path& path, const ReaderOptions& options = {});

// Same as read_dataset on `contents` already in memory (tests, fuzzers); `display_name` stands in for
// the path in messages and, with format AUTO, gives the extension.
Dataset parse_dataset(std::string_view contents, const std::string& display_name,
                      const ReaderOptions& options = {});

// DATA_DIR/<split>.tsv of a GLUE-layout folder ("train", "dev"); throws Error(IO) naming the folder and
// listing the files it holds when the split is missing.
std::filesystem::path find_glue_split(const std::filesystem::path& data_dir, std::string_view split);

}  // namespace nlpf
