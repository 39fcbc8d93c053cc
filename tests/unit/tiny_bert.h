// A tiny BERT, a padded batch and small tokenised sets for the model tests (bert_model_test,
// bert_inference_test, the CUDA inference tests): small enough for finite differences, large enough that
// attention and GELU are far from linear.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

#include "backend/context.h"
#include "model/bert_config.h"
#include "text/batching.h"

namespace nlpf::test {

// The shared CPU context's math mode for a test that runs the CPU's mixed-precision reference: put back to
// IEEE fp32 when the guard goes, whatever happens in between.
struct CpuMathModeGuard {
  CpuMathModeGuard() = default;
  CpuMathModeGuard(const CpuMathModeGuard&) = delete;
  CpuMathModeGuard& operator=(const CpuMathModeGuard&) = delete;
  ~CpuMathModeGuard() { cpu_context().set_math_mode(MathMode::IEEE_FP32); }
};

inline BertConfig tiny_config(int64_t layers = 2) {
  BertConfig c;
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 2;
  c.intermediate_size = 32;
  c.max_position_embeddings = 16;
  // Larger than HF's 0.02 so that attention and GELU are far from linear in these tiny models.
  c.initializer_range = 0.2;
  return c;
}

// B = 3, T = 7: one full row with a sentence pair, two padded rows.
inline Batch tiny_batch() {
  Batch b;
  b.B = 3;
  b.T = 7;
  b.input_ids = {2, 5, 9, 3, 11, 12, 3, 2, 7, 8, 20, 3, 0, 0, 2, 39, 3, 0, 0, 0, 0};
  b.token_type_ids = {0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  b.attention_mask = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0};
  b.labels = {1, 0, 1};
  return b;
}

// 11 examples of lengths 3..12 (random ids in the tiny vocabulary), labels alternating.
inline TokenizedDataset tiny_dataset(int64_t max_length) {
  TokenizedDataset data;
  data.max_length = max_length;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> id(4, 39);
  for (int64_t i = 0; i < 11; ++i) {
    Encoding e;
    const int64_t length = std::min<int64_t>(3 + i, max_length);
    for (int64_t t = 0; t < length; ++t) {
      e.input_ids.push_back(t == 0 ? 2 : t == length - 1 ? 3 : id(rng));
      e.token_type_ids.push_back(0);
      e.attention_mask.push_back(1);
    }
    data.encodings.push_back(e);
    data.labels.push_back(static_cast<int32_t>(i % 2));
  }
  return data;
}

// n examples of random lengths in [3, max_length] (ids in [4, vocab)), a sentence pair in every third.
inline TokenizedDataset random_dataset(std::mt19937& rng, int64_t n, int64_t max_length, int32_t vocab) {
  TokenizedDataset data;
  data.max_length = max_length;
  std::uniform_int_distribution<int32_t> id(4, vocab - 1);
  std::uniform_int_distribution<int64_t> length(3, max_length);
  for (int64_t i = 0; i < n; ++i) {
    Encoding e;
    const int64_t len = length(rng);
    for (int64_t t = 0; t < len; ++t) {
      e.input_ids.push_back(t == 0 ? 2 : t == len - 1 ? 3 : id(rng));
      e.token_type_ids.push_back(i % 3 == 0 && t > len / 2 ? 1 : 0);
      e.attention_mask.push_back(1);
    }
    data.encodings.push_back(e);
    data.labels.push_back(static_cast<int32_t>(i % 2));
  }
  return data;
}

}  // namespace nlpf::test
