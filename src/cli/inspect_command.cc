// nlpf inspect: load a Hugging Face BERT directory and (optionally) a dataset, and report what Phase 1
// and Phase 2 will see: the configuration, parameters, tokenizer settings, label counts and how many
// examples each max sequence length truncates. --save-as rewrites the model as
// BertForSequenceClassification in HF layout (the same writer Phase 1 uses for best_model/).
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "measure/stats.h"
#include "model/checkpoint.h"
#include "text/batching.h"
#include "text/dataset.h"
#include "text/tokenizer.h"

namespace nlpf::cli {
namespace {

struct InspectOptions {
  std::string model;
  DataSettings data;
  std::vector<int64_t> sequence_lengths = {128, 96, 64, 48, 40, 32, 24, 16};
  std::string save_as;
  std::string save_dtype = "keep";
  bool quiet = false;
};

ReaderOptions reader_options(const DataSettings& data) {
  ReaderOptions r;
  if (!data.text_column.empty()) r.text_column = data.text_column;
  if (!data.label_column.empty()) r.label_column = data.label_column;
  return r;
}

// (split name, path) pairs named by --data-dir / --train-file / --eval-file.
std::vector<std::pair<std::string, std::filesystem::path>> data_files(const DataSettings& data) {
  std::vector<std::pair<std::string, std::filesystem::path>> files;
  if (!data.data_dir.empty()) {
    files.emplace_back("train", find_glue_split(data.data_dir, "train"));
    files.emplace_back("dev", find_glue_split(data.data_dir, "dev"));
  }
  if (!data.train_file.empty()) files.emplace_back("train", data.train_file);
  if (!data.eval_file.empty()) files.emplace_back("eval", data.eval_file);
  return files;
}

void report_model(const Checkpoint& ck) {
  const BertConfig& c = ck.config;
  int64_t parameters = 0;
  std::map<std::string, int64_t> by_dtype;
  for (const auto& [name, t] : ck.tensors) {
    parameters += t.numel();
    by_dtype[dtype_name(t.dtype())] += t.numel();
  }
  std::printf("model %s\n", ck.directory.string().c_str());
  std::printf(
      "  config      %lld layers, hidden %lld, %lld heads, intermediate %lld, vocab %lld, positions %lld, "
      "%lld labels\n",
      static_cast<long long>(c.num_hidden_layers), static_cast<long long>(c.hidden_size),
      static_cast<long long>(c.num_attention_heads), static_cast<long long>(c.intermediate_size),
      static_cast<long long>(c.vocab_size), static_cast<long long>(c.max_position_embeddings),
      static_cast<long long>(c.num_labels()));
  std::printf("  parameters  %lld (", static_cast<long long>(parameters));
  bool first = true;
  for (const auto& [dtype, n] : by_dtype) {
    std::printf("%s%s %lld", first ? "" : ", ", dtype.c_str(), static_cast<long long>(n));
    first = false;
  }
  std::printf(")\n");
  if (!ck.initialized.empty()) {
    std::printf("  initialised ");
    for (size_t i = 0; i < ck.initialized.size(); ++i)
      std::printf("%s%s", i ? ", " : "", ck.initialized[i].c_str());
    std::printf(" (absent from the checkpoint)\n");
  }
  std::printf("  tokenizer   WordPiece, %lld tokens, do_lower_case %s\n",
              static_cast<long long>(ck.vocab.size()), ck.do_lower_case ? "true" : "false");
}

void report_split(const std::string& split, const Dataset& data, const TokenizedDataset& tokens,
                  const std::vector<int64_t>& lengths) {
  std::map<int32_t, int64_t> label_counts;
  for (const Example& e : data.examples) ++label_counts[e.label];
  std::printf("%s %s\n  examples    %lld; labels", split.c_str(), data.path.c_str(),
              static_cast<long long>(data.size()));
  for (const auto& [label, n] : label_counts) {
    if (label == kNoLabel)
      std::printf(" none: %lld", static_cast<long long>(n));
    else
      std::printf(" %d: %lld", label, static_cast<long long>(n));
  }
  std::vector<double> sizes;
  sizes.reserve(tokens.encodings.size());
  for (const Encoding& e : tokens.encodings) sizes.push_back(static_cast<double>(e.size()));
  std::printf(
      "\n  tokens      per example with [CLS]/[SEP]: mean %.1f, p50 %.0f, p90 %.0f, p99 %.0f, max %lld\n",
      tokens.mean_untruncated_length, percentile(sizes, 50), percentile(sizes, 90), percentile(sizes, 99),
      static_cast<long long>(tokens.max_untruncated_length));
  if (tokens.num_truncated > 0) {
    std::printf("  note        %lld examples exceed the model's %lld positions and are truncated there\n",
                static_cast<long long>(tokens.num_truncated), static_cast<long long>(tokens.max_length));
  }
  std::printf("  truncated  ");
  for (int64_t length : lengths) {
    int64_t n = 0;
    for (double s : sizes) n += s > static_cast<double>(length);
    std::printf(" %lld: %lld (%.1f%%)", static_cast<long long>(length), static_cast<long long>(n),
                sizes.empty() ? 0.0 : 100.0 * static_cast<double>(n) / static_cast<double>(sizes.size()));
  }
  std::printf("\n");
}

int run_inspect(const InspectOptions& o) {
  CheckpointLoadOptions load_options;
  load_options.quiet = o.quiet;
  const Checkpoint ck = load_checkpoint(o.model, load_options);
  report_model(ck);
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(o.model);
  for (const auto& [split, path] : data_files(o.data)) {
    const Dataset data = read_dataset(path, reader_options(o.data));
    // Untruncated lengths (up to the model's positions) give every sweep length's truncation count.
    const TokenizedDataset tokens =
        tokenize_dataset(data, tokenizer, ck.config.max_position_embeddings, /*show_progress=*/!o.quiet);
    report_split(split, data, tokens, o.sequence_lengths);
  }
  if (!o.save_as.empty()) {
    CheckpointSaveOptions save;
    if (o.save_dtype == "keep")
      save.dtype = std::nullopt;
    else if (o.save_dtype == "f32")
      save.dtype = DType::F32;
    else if (o.save_dtype == "f16")
      save.dtype = DType::F16;
    else
      save.dtype = DType::BF16;
    save_checkpoint(o.save_as, ck.config, ck.tensors, ck.vocab, ck.do_lower_case, save);
    std::printf("saved %s (BertForSequenceClassification, Hugging Face layout)\n", o.save_as.c_str());
  }
  return 0;
}

}  // namespace

void register_inspect(CLI::App& app, Action& action) {
  auto options = std::make_shared<InspectOptions>();
  InspectOptions& o = *options;
  CLI::App* sub =
      app.add_subcommand("inspect", "Load a model and data; report config, labels and token lengths");
  sub->add_option("--model", o.model, "Hugging Face BERT directory")->required();
  add_data_options(*sub, o.data);
  sub->add_option(flag_names("sequence-lengths"), o.sequence_lengths, "Lengths whose truncation is counted")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  sub->add_option(flag_names("save-as"), o.save_as, "Write the model as BertForSequenceClassification here");
  sub->add_option(flag_names("save-dtype"), o.save_dtype, "dtype of the saved weights")
      ->capture_default_str()
      ->check(CLI::IsMember({"keep", "f32", "f16", "bf16"}));
  sub->add_flag("--quiet,-q", o.quiet, "No notices or progress");
  sub->callback([&action, options] { action = [options] { return run_inspect(*options); }; });
}

}  // namespace nlpf::cli
