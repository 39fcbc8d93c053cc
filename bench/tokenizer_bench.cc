// Tokenizer throughput on SST-2 train, one thread: every sentence encoded with [CLS]/[SEP] and truncation
// to 128 tokens, the same work as bench/peer_tokenizer.py does with Hugging Face BertTokenizerFast.
// Usage: tokenizer_bench --train-tsv FILE --vocab-dir DIR [Google Benchmark flags]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/dataset.h"
#include "text/tokenizer.h"

namespace {

struct Inputs {
  std::vector<std::string> sentences;
  const nlpf::WordPieceTokenizer* tokenizer = nullptr;
};

void BM_EncodeSst2Train(benchmark::State& state, const Inputs* inputs) {
  constexpr int64_t kMaxLength = 128;
  int64_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const std::string& s : inputs->sentences) {
      nlpf::Encoding e = inputs->tokenizer->encode(s, kMaxLength);
      tokens += e.size();
      benchmark::DoNotOptimize(e.input_ids.data());
    }
  }
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["sentences"] = static_cast<double>(inputs->sentences.size());
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string train_tsv, vocab_dir;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--train-tsv") == 0) train_tsv = argv[++i];
    else if (std::strcmp(argv[i], "--vocab-dir") == 0) vocab_dir = argv[++i];
  }
  if (train_tsv.empty() || vocab_dir.empty()) {
    std::fprintf(stderr, "usage: tokenizer_bench --train-tsv FILE --vocab-dir DIR [benchmark flags]\n");
    return 2;
  }
  try {
    const nlpf::WordPieceTokenizer tokenizer = nlpf::WordPieceTokenizer::from_model_dir(vocab_dir);
    Inputs inputs;
    inputs.tokenizer = &tokenizer;
    for (nlpf::Example& e : nlpf::read_dataset(train_tsv).examples) inputs.sentences.push_back(std::move(e.text));
    benchmark::RegisterBenchmark("encode_sst2_train_max128", BM_EncodeSst2Train, &inputs)
        ->Unit(benchmark::kMillisecond)
        ->MinTime(2.0);
    benchmark::RunSpecifiedBenchmarks();
  } catch (const nlpf::Error& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}
