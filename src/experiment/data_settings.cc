// DataSettings checks and file lookup; see data_settings.h.
#include "experiment/data_settings.h"

#include "core/error.h"
#include "fetch/fetch.h"

namespace nlpf {

void check_data_settings(const DataSettings& d, bool need_train) {
  // "synthetic" is nlpf demo's generated task (GLUE layout, like sst2); the command line offers sst2 only.
  NLPF_CHECK(d.task == "sst2" || d.task == "synthetic", ErrorCode::UNSUPPORTED, "--task ", d.task,
             ": only sst2 is supported so far");
  if (need_train) {
    NLPF_CHECK(d.train_file.empty() == d.eval_file.empty(), ErrorCode::INVALID_ARGUMENT,
               "--train-file and --eval-file go together (got only ",
               d.train_file.empty() ? "--eval-file" : "--train-file", ")");
  }
  NLPF_CHECK((d.train_file.empty() && d.eval_file.empty()) || d.data_dir.empty(), ErrorCode::INVALID_ARGUMENT,
             "--data-dir cannot be combined with --train-file/--eval-file");
  NLPF_CHECK(!d.max_train_examples || *d.max_train_examples > 0, ErrorCode::INVALID_ARGUMENT,
             "--max-train-examples must be > 0");
  NLPF_CHECK(!d.max_eval_examples || *d.max_eval_examples > 0, ErrorCode::INVALID_ARGUMENT,
             "--max-eval-examples must be > 0");
}

DataFiles locate_data(const DataSettings& d, bool need_train) {
  if (!d.eval_file.empty()) {
    NLPF_CHECK(!need_train || !d.train_file.empty(), ErrorCode::INVALID_ARGUMENT,
               "--eval-file needs --train-file here (training data is read)");
    return {d.train_file, d.eval_file};
  }
  const std::filesystem::path dir =
      d.data_dir.empty() ? ensure_dataset("sst2") : std::filesystem::path(d.data_dir);
  return {need_train ? find_glue_split(dir, "train") : std::filesystem::path(), find_glue_split(dir, "dev")};
}

Dataset read_split(const std::filesystem::path& path, const DataSettings& d, int64_t num_labels,
                   std::optional<int64_t> limit) {
  ReaderOptions options;
  if (!d.text_column.empty()) options.text_column = d.text_column;
  if (!d.label_column.empty()) options.label_column = d.label_column;
  options.num_labels = static_cast<int32_t>(num_labels);
  Dataset data = read_dataset(path, options);
  if (limit && *limit < data.size()) data.examples.resize(static_cast<size_t>(*limit));
  return data;
}

}  // namespace nlpf
