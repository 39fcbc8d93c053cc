// The built-in synthetic sentiment task of `nlpf demo`: movie-review-like sentences made from templates
// with negation, intensifiers and contrast ("but", "although"), so that the label depends on word order and
// on tokens late in the sentence (truncation and dropped layers cost accuracy), plus the config of a tiny
// BERT trained on it from random initialisation. Everything is a pure function of the seed (Philox, integer
// arithmetic only), so every platform writes the same bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace nlpf {

// Defaults sized for `nlpf demo` on a 2-core CPU: phase1 --init random --epochs 3 --learning-rate 1e-3
// --batch-size 32 --max-sequence-length 32 trains in about 50 s single-threaded to dev accuracy 0.92-0.93.
struct SyntheticTaskOptions {
  int64_t train_examples = 8000;
  int64_t eval_examples = 500;
  uint64_t seed = 42;
};

// "the [modifier] <subject> <verb> [negator] [intensifier] <adjective> [tail]"; the fields index the word
// lists of synthetic_task.cc, -1 meaning the optional words are absent.
struct SyntheticClause {
  int32_t modifier = -1;  // "whole", "new", ...: no effect on polarity
  int32_t subject = 0;
  int32_t verb = 0;
  int32_t negator = -1;      // "not", "never", "hardly"
  int32_t intensifier = -1;  // "very", "really", "extremely": no effect on polarity
  bool positive_adjective = true;
  int32_t adjective = 0;  // index into the positive or the negative list
  int32_t tail = -1;
  // 1 when the clause says something good: the adjective's polarity, flipped by a negator.
  int32_t polarity() const { return (positive_adjective != (negator >= 0)) ? 1 : 0; }
};

enum class SyntheticForm {
  PLAIN,            // [prefix] A                 label = A
  BUT,              // [prefix] A but B           label = B
  ALTHOUGH_FIRST,   // although A , B             label = B
  ALTHOUGH_SECOND,  // [prefix] A , although B    label = A
};

struct SyntheticSentence {
  SyntheticForm form = SyntheticForm::PLAIN;
  int32_t prefix = -1;  // "overall ,", "to be honest ,", ...; never with ALTHOUGH_FIRST
  SyntheticClause first;
  SyntheticClause second;  // unused by PLAIN
  // The clause that decides the label (the other one is a concession).
  const SyntheticClause& main_clause() const;
  SyntheticClause& main_clause();
  int32_t label() const { return main_clause().polarity(); }
  // Lower-case words separated by single spaces; "," is a word of its own (BERT splits punctuation).
  std::string text() const;
};

// The model folder's name inside the task directory (also the model's name on plots).
inline constexpr const char* kSyntheticModelName = "tiny-bert-synthetic";

// `count` sentences of stream `stream` of `seed`, labels balanced exactly in each consecutive pair.
std::vector<SyntheticSentence> generate_synthetic_sentences(int64_t count, uint64_t seed, uint64_t stream);

// vocab.txt's tokens: [PAD] [UNK] [CLS] [SEP] [MASK], then every word the templates use, sorted.
std::vector<std::string> synthetic_vocabulary();

// Writes DIR/data/{train.tsv,dev.tsv} (GLUE layout: "sentence\tlabel", labels 0/1; no dev sentence also
// in train) and DIR/tiny-bert-synthetic/{config.json,vocab.txt,tokenizer_config.json} of a tiny BERT without weights
// (phase1 --init random builds them). DIR may exist; the files are replaced atomically. Errors:
// INVALID_ARGUMENT for non-positive sizes, IO naming the path that cannot be written.
void write_synthetic_task(const std::filesystem::path& dir, const SyntheticTaskOptions& options);

}  // namespace nlpf
