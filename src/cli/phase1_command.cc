// nlpf phase1 (alias run_phase_1): fine-tune and measure the baseline (DESIGN §2, §3).
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "experiment/phase1.h"

namespace nlpf::cli {

void register_phase1(CLI::App& app, Action& action) {
  auto settings = std::make_shared<Phase1Settings>();
  Phase1Settings& o = *settings;
  CLI::App* sub =
      app.add_subcommand("phase1", "Fine-tune the baseline and measure accuracy, latency, energy");
  sub->alias("run_phase_1");
  sub->add_option("--model", o.model, "Hugging Face model directory or hub name")->capture_default_str();
  sub->add_option("--init", o.init,
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
  sub->add_option(flag_names("epochs"), o.epochs, "Training epochs (0: measure the given model as it is)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
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
  add_padding_option(*sub, o.padding);
  sub->add_option("--device", o.device, "auto, cpu, cuda or cuda:N")
      ->capture_default_str()
      ->check(device_validator());
  sub->add_option(flag_names("train-precision"), o.train_precision, "Training precision")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}));
  sub->add_option(flag_names("runs-dir"), o.runs_dir, "Where run directories are created")
      ->capture_default_str();
  add_common_options(*sub, o.data, o.protocol, o.quiet);
  sub->callback([&action, settings] {
    action = [settings]() -> int {
      run_phase1(*settings);
      return 0;
    };
  });
}

}  // namespace nlpf::cli
