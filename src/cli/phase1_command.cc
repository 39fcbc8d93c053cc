// nlpf phase1 (alias run_phase_1): fine-tune and measure the baseline (DESIGN §2, §3).
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "experiment/phase1.h"

namespace nlpf::cli {

void register_phase1(CLI::App& app, Action& action) {
  auto options = std::make_shared<Phase1Options>();
  Phase1Options& o = *options;
  auto init = std::make_shared<std::string>("pretrained");
  CLI::App* sub =
      app.add_subcommand("phase1", "Fine-tune the baseline and measure accuracy, latency, energy");
  sub->alias("run_phase_1");
  sub->add_option("--model", o.model, "Hugging Face model directory or hub name")->capture_default_str();
  sub->add_option("--init", *init,
                  "pretrained (the checkpoint's weights) or random (from config.json and --seed)")
      ->capture_default_str()
      ->check(CLI::IsMember({"pretrained", "random"}));
  add_data_options(*sub, o.data);
  sub->add_option(flag_names("max-sequence-length"), o.max_sequence_length,
                  "Tokens per example incl. [CLS]/[SEP]")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{4096}));
  sub->add_option(flag_names("batch-size"), o.batch_size, "Training batch size")
      ->capture_default_str()
      ->check(positive());
  sub->add_option(flag_names("epochs"), o.epochs, "Training epochs")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  sub->add_option(flag_names("learning-rate"), o.learning_rate, "Peak AdamW learning rate")
      ->capture_default_str()
      ->check(positive());
  sub->add_option(flag_names("weight-decay"), o.weight_decay, "Decoupled weight decay")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option(flag_names("warmup-ratio"), o.warmup_ratio, "Fraction of steps with linear warm-up")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--seed", o.seed, "Random seed")->capture_default_str();
  sub->add_option(flag_names("eval-batch-size"), o.eval_batch_size, "Evaluation batch size")
      ->capture_default_str()
      ->check(positive());
  sub->add_option("--device", o.device, "auto, cpu, cuda or cuda:N")
      ->capture_default_str()
      ->check(device_validator());
  sub->add_option(flag_names("train-precision"), o.train_precision, "Training precision")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}));
  sub->add_option(flag_names("runs-dir"), o.runs_dir, "Where run directories are created")
      ->capture_default_str();
  add_common_options(*sub, o.common);
  sub->callback([&action, options, init] {
    action = [options, init]() -> int {
      const Phase1Options& o = *options;
      Phase1Settings s;
      s.model = o.model;
      s.init = *init;
      s.data_dir = o.data.data_dir;
      s.train_file = o.data.train_file;
      s.eval_file = o.data.eval_file;
      s.task = o.data.task;
      s.text_column = o.data.text_column;
      s.label_column = o.data.label_column;
      s.max_sequence_length = o.max_sequence_length;
      s.batch_size = o.batch_size;
      s.epochs = o.epochs;
      s.learning_rate = o.learning_rate;
      s.weight_decay = o.weight_decay;
      s.warmup_ratio = o.warmup_ratio;
      s.seed = o.seed;
      s.eval_batch_size = o.eval_batch_size;
      s.device = o.device;
      s.train_precision = o.train_precision;
      s.runs_dir = o.runs_dir;
      s.max_train_examples = o.common.max_train_examples;
      s.max_eval_examples = o.common.max_eval_examples;
      s.protocol.trials = o.common.trials;
      s.protocol.min_trial_seconds = o.common.min_trial_seconds;
      s.protocol.idle_seconds = o.common.idle_seconds;
      s.protocol.cooldown_seconds = o.common.cooldown_seconds;
      s.quiet = o.common.quiet;
      run_phase1(s);
      return 0;
    };
  });
}

}  // namespace nlpf::cli
