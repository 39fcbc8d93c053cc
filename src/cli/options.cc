// Shared option registration for the subcommands.
#include "cli/options.h"

#include <algorithm>
#include <regex>

#include "text/batching.h"

namespace nlpf::cli {

std::string flag_names(const std::string& dashed) {
  std::string underscored = dashed;
  std::replace(underscored.begin(), underscored.end(), '-', '_');
  if (underscored == dashed) return "--" + dashed;
  return "--" + dashed + ",--" + underscored;
}

void add_common_options(CLI::App& app, DataSettings& data, ProtocolOptions& o, bool& quiet) {
  app.add_option(flag_names("max-train-examples"), data.max_train_examples,
                 "Use only the first N training examples (smoke runs)")
      ->check(positive());
  app.add_option(flag_names("max-eval-examples"), data.max_eval_examples,
                 "Use only the first N evaluation examples (smoke runs)")
      ->check(positive());
  app.add_option(flag_names("trials"), o.trials, "Measured trials per configuration")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option(flag_names("min-trial-seconds"), o.min_trial_seconds, "Minimum length of one trial")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option(flag_names("idle-seconds"), o.idle_seconds, "Idle baseline before measuring")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option(flag_names("warmup-seconds"), o.warmup_min_seconds,
                 "Minimum warm-up before the trials (a fresh GPU may need ~25 s to settle: bench/RESULTS.md)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option(flag_names("cooldown-seconds"), o.cooldown_seconds, "Pause between configurations")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_flag("--quiet,-q", quiet, "No progress output");
}

void add_padding_option(CLI::App& app, std::string& padding) {
  app.add_option(
         flag_names("padding"), padding,
         "How evaluation batches are padded: max-length (the study's), longest (to the batch's longest "
         "example) or bucketed (examples sorted by length, predictions in file order)")
      ->capture_default_str()
      ->check(CLI::IsMember(padding_names()));
}

void add_data_options(CLI::App& app, DataSettings& o) {
  app.add_option(flag_names("data-dir"), o.data_dir, "Folder with train.tsv and dev.tsv (GLUE layout)");
  app.add_option(flag_names("train-file"), o.train_file, "Training data (.tsv, .csv or .jsonl)");
  app.add_option(flag_names("eval-file"), o.eval_file, "Evaluation data (.tsv, .csv or .jsonl)");
  app.add_option(flag_names("task"), o.task, "Task name")
      ->capture_default_str()
      ->check(CLI::IsMember({"sst2"}));
  app.add_option(flag_names("text-column"), o.text_column, "Text column (default: the task's, 'sentence')");
  app.add_option(flag_names("label-column"), o.label_column, "Label column (default: 'label')");
}

const CLI::Validator& device_validator() {
  static const CLI::Validator validator(
      [](std::string& value) -> std::string {
        static const std::regex kDevice("auto|cpu|cuda(:[0-9]+)?");
        if (std::regex_match(value, kDevice)) return {};
        return "device must be auto, cpu, cuda or cuda:N, got '" + value + "'";
      },
      "auto|cpu|cuda[:N]");
  return validator;
}

const CLI::Validator& positive() {
  static const CLI::Validator validator(
      [](std::string& value) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(value, &used);
          if (used == value.size() && v > 0) return {};
        } catch (const std::exception&) {
        }
        return "must be a positive number, got '" + value + "'";
      },
      "POSITIVE");
  return validator;
}

}  // namespace nlpf::cli
