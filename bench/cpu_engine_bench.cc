// CPU engine speed (issue item 8): an EVAL forward and one training step (zero_grad, TRAIN forward with
// dropout, backward, clipping at 1.0, AdamW over all parameters: nlpf::Optimizer::step) at B=32, T=128 with
// random ids and a full attention mask, for the bert-base shape (random init, 12 layers) and for
// all-MiniLM-L6-v2 (its checkpoint). bench/peer_cpu_engine.py does the same work with PyTorch. Threads:
// OMP_NUM_THREADS sets the one OpenMP pool; OpenBLAS runs single-threaded inside it. Times are wall clock
// (UseRealTime); a step takes seconds, so run with --benchmark_repetitions=5 (median) rather than a long
// --benchmark_min_time. Usage: cpu_engine_bench --config-dir DIR [--minilm-dir DIR] [--batch 32] [--tokens
// 128] [benchmark flags]
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/bert_config.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "text/batching.h"
#include "train/optimizer.h"

// OpenBLAS's thread count, reported as a counter (1: nlpf runs BLAS single-threaded on its OpenMP threads,
// src/backend/cpu/blas.h); weak so that a build against another BLAS still links (-1 there).
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace {

constexpr uint64_t kInitSeed = 42;
constexpr uint64_t kBatchSeed = 7;

// One model under test with its optimizer and fixed batches.
struct Subject {
  std::unique_ptr<nlpf::BertForSequenceClassification> model;
  std::unique_ptr<nlpf::Optimizer> optimizer;
  nlpf::Batch train_batch;  // with labels
  nlpf::Batch eval_batch;   // the same tokens without labels (no loss, as the peer's inference)
};

// Random ids in [1000, V) (real word pieces, no special tokens), token type 0, mask 1, labels 0/1.
nlpf::Batch random_batch(int64_t B, int64_t T, int64_t V, bool with_labels) {
  std::mt19937_64 rng(kBatchSeed);
  std::uniform_int_distribution<int32_t> token(1000, static_cast<int32_t>(V - 1));
  nlpf::Batch batch;
  batch.B = B;
  batch.T = T;
  batch.input_ids.resize(B * T);
  for (int32_t& id : batch.input_ids) id = token(rng);
  batch.token_type_ids.assign(B * T, 0);
  batch.attention_mask.assign(B * T, 1);
  for (int64_t b = 0; b < B; ++b) batch.example_index.push_back(b);
  if (with_labels) {
    std::bernoulli_distribution label(0.5);
    for (int64_t b = 0; b < B; ++b) batch.labels.push_back(label(rng) ? 1 : 0);
  }
  return batch;
}

Subject make_subject(std::unique_ptr<nlpf::BertForSequenceClassification> model, int64_t B, int64_t T) {
  Subject s;
  nlpf::OptimizerSettings settings;  // the recipe's lr, decay, betas, eps and clipping
  // Warmup 0 and a horizon no run reaches: every timed step is an ordinary update.
  settings.total_steps = int64_t{1} << 40;
  settings.warmup_steps = 0;
  const int64_t V = model->config().vocab_size;
  s.model = std::move(model);
  s.optimizer = std::make_unique<nlpf::Optimizer>(*s.model, settings);
  s.train_batch = random_batch(B, T, V, true);
  s.eval_batch = random_batch(B, T, V, false);
  return s;
}

void set_counters(benchmark::State& state, const Subject& s) {
  const auto B = static_cast<double>(s.train_batch.B);
  state.counters["omp_threads"] = omp_get_max_threads();
  state.counters["blas_threads"] = openblas_get_num_threads ? openblas_get_num_threads() : -1;
  state.counters["batch"] = B;
  state.counters["tokens"] = static_cast<double>(s.train_batch.T);
  state.counters["parameters"] = static_cast<double>(s.model->num_parameters());
  state.counters["examples_per_s"] = benchmark::Counter(B, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_EvalForward(benchmark::State& state, Subject* s) {
  // One untimed pass: first-touch allocation of the scratch buffers is not what is measured.
  benchmark::DoNotOptimize(s->model->forward(s->eval_batch, nlpf::ForwardMode::EVAL).logits.data<float>());
  for (auto _ : state) {
    nlpf::ModelOutput out = s->model->forward(s->eval_batch, nlpf::ForwardMode::EVAL);
    benchmark::DoNotOptimize(out.logits.data<float>());
  }
  set_counters(state, *s);
}

void BM_TrainStep(benchmark::State& state, Subject* s) {
  nlpf::StepResult r = s->optimizer->step(s->train_batch);  // untimed warm-up (allocations, moments)
  for (auto _ : state) {
    r = s->optimizer->step(s->train_batch);
    benchmark::DoNotOptimize(r.loss);
  }
  state.counters["loss"] = r.loss;  // a sanity check: finite, near ln 2 at first
  set_counters(state, *s);
}

void register_subject(const std::string& name, Subject* s) {
  benchmark::RegisterBenchmark((name + "/eval_forward").c_str(), BM_EvalForward, s)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark((name + "/train_step").c_str(), BM_TrainStep, s)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string config_dir, minilm_dir;
  int64_t B = 32, T = 128;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--config-dir") == 0)
      config_dir = argv[++i];
    else if (std::strcmp(argv[i], "--minilm-dir") == 0)
      minilm_dir = argv[++i];
    else if (std::strcmp(argv[i], "--batch") == 0)
      B = std::atoll(argv[++i]);
    else if (std::strcmp(argv[i], "--tokens") == 0)
      T = std::atoll(argv[++i]);
  }
  if (config_dir.empty() || B <= 0 || T <= 0) {
    std::fprintf(stderr,
                 "usage: cpu_engine_bench --config-dir DIR [--minilm-dir DIR] [--batch 32] [--tokens 128] "
                 "[benchmark flags]\n");
    return 2;
  }
  try {
    // Subjects live until the benchmarks have run; a MiniLM directory is optional.
    Subject bert_base = make_subject(
        std::make_unique<nlpf::BertForSequenceClassification>(nlpf::BertConfig::load(config_dir), kInitSeed),
        B, T);
    register_subject("bert_base", &bert_base);
    std::optional<Subject> minilm;
    if (!minilm_dir.empty()) {
      nlpf::CheckpointLoadOptions options;
      options.quiet = true;
      minilm = make_subject(
          std::make_unique<nlpf::BertForSequenceClassification>(nlpf::load_checkpoint(minilm_dir, options)),
          B, T);
      register_subject("minilm", &*minilm);
    }
    benchmark::RunSpecifiedBenchmarks();
  } catch (const nlpf::Error& e) {
    std::fprintf(stderr, "cpu_engine_bench: %s\n", e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}
