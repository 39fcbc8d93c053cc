// Generator of the synthetic sentiment task. Random choices come from Philox blocks of (seed, stream) read
// as uint32 and mapped to [0, n) by a 32x32->64-bit multiply, never through floating point, so the
// sentences are identical on every platform and compiler. Probabilities are written in percent.
#include "experiment/synthetic_task.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <system_error>
#include <unordered_set>

#include "core/error.h"
#include "core/file_util.h"
#include "core/random.h"
#include "model/bert_config.h"

namespace nlpf {
namespace {

constexpr std::array<std::string_view, 10> kSubjects = {"movie",  "film",  "plot",   "story", "acting",
                                                        "script", "music", "ending", "cast",  "dialogue"};
constexpr std::array<std::string_view, 4> kModifiers = {"whole", "new", "first", "final"};
constexpr std::array<std::string_view, 4> kVerbs = {"was", "is", "felt", "seemed"};
constexpr std::array<std::string_view, 3> kNegators = {"not", "never", "hardly"};
constexpr std::array<std::string_view, 3> kIntensifiers = {"very", "really", "extremely"};
constexpr std::array<std::string_view, 10> kPositive = {"good",     "great",     "fun",   "moving", "clever",
                                                        "charming", "brilliant", "funny", "warm",   "smart"};
constexpr std::array<std::string_view, 10> kNegative = {"bad",  "dull",  "boring", "awful", "weak",
                                                        "slow", "messy", "bland",  "silly", "flat"};
constexpr std::array<std::string_view, 6> kTails = {"at times", "for me",    "in places",
                                                    "to watch", "this time", "in parts"};
constexpr std::array<std::string_view, 6> kPrefixes = {"overall ,",    "to be honest ,", "in the end ,",
                                                       "all in all ,", "frankly ,",      "i thought"};

// Chances in percent. Contrast forms dominate so that most labels sit in the second half of the sentence,
// and the concession more often than not has the opposite polarity (as "but" implies), so a model that
// reads only the first clause is near chance there. Not more: with 70% opposite concessions and 40%
// negation no single word correlates with the label, and a tiny BERT from random initialisation sat at
// loss ln 2 for a whole epoch before it found the structure.
constexpr uint32_t kPlainPercent = 20, kButPercent = 45, kAlthoughFirstPercent = 20;
constexpr uint32_t kPrefixPercent = 60, kModifierPercent = 30, kNegatorPercent = 25, kIntensifierPercent = 40;
constexpr uint32_t kTailPercent = 50;
constexpr uint32_t kOppositeConcessionPercent = 60;

constexpr uint64_t kTrainStream = 1, kEvalStream = 2;

// Consecutive uint32 draws of subsequence `stream` of `seed`.
class Draws {
 public:
  Draws(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  uint32_t next() {
    if (index_ % 4 == 0) block_ = philox_block(seed_, index_ / 4, stream_);
    return block_[index_++ % 4];
  }
  // Uniform in [0, n) by Lemire's multiply (bias below 2^-32 * n, irrelevant here).
  int32_t below(size_t n) {
    return static_cast<int32_t>((static_cast<uint64_t>(next()) * static_cast<uint64_t>(n)) >> 32);
  }
  bool percent(uint32_t chance) { return static_cast<uint32_t>(below(100)) < chance; }

 private:
  uint64_t seed_;
  uint64_t stream_;
  uint64_t index_ = 0;
  PhiloxCounter block_{};
};

SyntheticClause sample_clause(Draws& draws, int32_t polarity) {
  SyntheticClause c;
  if (draws.percent(kModifierPercent)) c.modifier = draws.below(kModifiers.size());
  c.subject = draws.below(kSubjects.size());
  c.verb = draws.below(kVerbs.size());
  if (draws.percent(kNegatorPercent)) c.negator = draws.below(kNegators.size());
  if (draws.percent(kIntensifierPercent)) c.intensifier = draws.below(kIntensifiers.size());
  c.positive_adjective = (polarity == 1) != (c.negator >= 0);
  c.adjective = draws.below(c.positive_adjective ? kPositive.size() : kNegative.size());
  if (draws.percent(kTailPercent)) c.tail = draws.below(kTails.size());
  return c;
}

SyntheticSentence sample_sentence(Draws& draws, int32_t label) {
  SyntheticSentence s;
  const uint32_t form = static_cast<uint32_t>(draws.below(100));
  if (form < kPlainPercent) {
    s.form = SyntheticForm::PLAIN;
  } else if (form < kPlainPercent + kButPercent) {
    s.form = SyntheticForm::BUT;
  } else if (form < kPlainPercent + kButPercent + kAlthoughFirstPercent) {
    s.form = SyntheticForm::ALTHOUGH_FIRST;
  } else {
    s.form = SyntheticForm::ALTHOUGH_SECOND;
  }
  if (s.form != SyntheticForm::ALTHOUGH_FIRST && draws.percent(kPrefixPercent)) {
    s.prefix = draws.below(kPrefixes.size());
  }
  const int32_t concession = draws.percent(kOppositeConcessionPercent) ? 1 - label : label;
  const bool main_first = s.form == SyntheticForm::PLAIN || s.form == SyntheticForm::ALTHOUGH_SECOND;
  s.first = sample_clause(draws, main_first ? label : concession);
  if (s.form != SyntheticForm::PLAIN) s.second = sample_clause(draws, main_first ? concession : label);
  return s;
}

void append_clause(std::string& out, const SyntheticClause& c) {
  out += "the ";
  if (c.modifier >= 0) (out += kModifiers.at(static_cast<size_t>(c.modifier))) += ' ';
  out += kSubjects.at(static_cast<size_t>(c.subject));
  out += ' ';
  out += kVerbs.at(static_cast<size_t>(c.verb));
  if (c.negator >= 0) (out += ' ') += kNegators.at(static_cast<size_t>(c.negator));
  if (c.intensifier >= 0) (out += ' ') += kIntensifiers.at(static_cast<size_t>(c.intensifier));
  out += ' ';
  out += c.positive_adjective ? kPositive.at(static_cast<size_t>(c.adjective))
                              : kNegative.at(static_cast<size_t>(c.adjective));
  if (c.tail >= 0) (out += ' ') += kTails.at(static_cast<size_t>(c.tail));
}

// Sentences of one split, labels balanced in each consecutive pair (so any even-sized prefix of the file is
// balanced too). A sentence whose text is in `exclude` is drawn again with the same label, which keeps
// the dev split free of training sentences.
std::vector<SyntheticSentence> generate(int64_t count, uint64_t seed, uint64_t stream,
                                        const std::unordered_set<std::string>* exclude) {
  NLPF_CHECK(count >= 0, ErrorCode::INVALID_ARGUMENT, "synthetic task: example count ", count, " < 0");
  Draws draws(seed, stream);
  std::vector<SyntheticSentence> out;
  out.reserve(static_cast<size_t>(count));
  int32_t first_label = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (i % 2 == 0) first_label = draws.below(2);
    const int32_t label = i % 2 == 0 ? first_label : 1 - first_label;
    SyntheticSentence s = sample_sentence(draws, label);
    // The template space has millions of sentences, so a redraw is rare and this ends quickly.
    while (exclude != nullptr && exclude->count(s.text()) > 0) s = sample_sentence(draws, label);
    out.push_back(s);
  }
  return out;
}

std::string to_tsv(const std::vector<SyntheticSentence>& sentences) {
  std::string out = "sentence\tlabel\n";
  for (const SyntheticSentence& s : sentences) {
    out += s.text();
    out += '\t';
    out += static_cast<char>('0' + s.label());
    out += '\n';
  }
  return out;
}

void make_directories(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  NLPF_CHECK(!ec, ErrorCode::IO, "cannot create directory ", dir.string(), ": ", ec.message());
}

// The tiny BERT: about 0.1 M parameters, small enough to train from random initialisation on a CPU in
// well under a minute, deep enough (4 layers) that keeping 2 or 1 of them visibly costs accuracy.
BertConfig tiny_config(int64_t vocab_size) {
  BertConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 64;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.intermediate_size = 128;
  c.max_position_embeddings = 64;
  c.id2label = {"negative", "positive"};
  c.architectures = {"BertForSequenceClassification"};
  return c;
}

}  // namespace

const SyntheticClause& SyntheticSentence::main_clause() const {
  return form == SyntheticForm::BUT || form == SyntheticForm::ALTHOUGH_FIRST ? second : first;
}

SyntheticClause& SyntheticSentence::main_clause() {
  return form == SyntheticForm::BUT || form == SyntheticForm::ALTHOUGH_FIRST ? second : first;
}

std::string SyntheticSentence::text() const {
  std::string out;
  if (prefix >= 0) (out += kPrefixes.at(static_cast<size_t>(prefix))) += ' ';
  switch (form) {
    case SyntheticForm::PLAIN:
      append_clause(out, first);
      break;
    case SyntheticForm::BUT:
      append_clause(out, first);
      out += " but ";
      append_clause(out, second);
      break;
    case SyntheticForm::ALTHOUGH_FIRST:
      out += "although ";
      append_clause(out, first);
      out += " , ";
      append_clause(out, second);
      break;
    case SyntheticForm::ALTHOUGH_SECOND:
      append_clause(out, first);
      out += " , although ";
      append_clause(out, second);
      break;
  }
  return out;
}

std::vector<SyntheticSentence> generate_synthetic_sentences(int64_t count, uint64_t seed, uint64_t stream) {
  return generate(count, seed, stream, nullptr);
}

std::vector<std::string> synthetic_vocabulary() {
  std::vector<std::string> words = {"the", "but", "although", ","};
  const auto add_words = [&words](auto const& phrases) {
    for (std::string_view phrase : phrases) {
      std::istringstream in{std::string(phrase)};
      for (std::string word; in >> word;) words.push_back(word);
    }
  };
  add_words(kModifiers);
  add_words(kSubjects);
  add_words(kVerbs);
  add_words(kNegators);
  add_words(kIntensifiers);
  add_words(kPositive);
  add_words(kNegative);
  add_words(kTails);
  add_words(kPrefixes);
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  tokens.insert(tokens.end(), words.begin(), words.end());
  return tokens;
}

void write_synthetic_task(const std::filesystem::path& dir, const SyntheticTaskOptions& options) {
  NLPF_CHECK(options.train_examples > 0, ErrorCode::INVALID_ARGUMENT,
             "synthetic task: train_examples must be > 0, got ", options.train_examples);
  NLPF_CHECK(options.eval_examples > 0, ErrorCode::INVALID_ARGUMENT,
             "synthetic task: eval_examples must be > 0, got ", options.eval_examples);
  const std::vector<SyntheticSentence> train =
      generate(options.train_examples, options.seed, kTrainStream, nullptr);
  std::unordered_set<std::string> train_texts;
  for (const SyntheticSentence& s : train) train_texts.insert(s.text());
  const std::vector<SyntheticSentence> eval =
      generate(options.eval_examples, options.seed, kEvalStream, &train_texts);

  const std::filesystem::path data_dir = dir / "data", model_dir = dir / kSyntheticModelName;
  make_directories(data_dir);
  make_directories(model_dir);
  write_file_atomic(data_dir / "train.tsv", to_tsv(train));
  write_file_atomic(data_dir / "dev.tsv", to_tsv(eval));

  const std::vector<std::string> vocab = synthetic_vocabulary();
  std::string vocab_text;
  for (const std::string& token : vocab) (vocab_text += token) += '\n';
  write_file_atomic(model_dir / "vocab.txt", vocab_text);
  write_file_atomic(model_dir / "config.json",
                    tiny_config(static_cast<int64_t>(vocab.size())).to_json_string());
  const nlohmann::json tokenizer_config = {
      {"do_lower_case", true}, {"model_max_length", 64}, {"tokenizer_class", "BertTokenizer"}};
  write_file_atomic(model_dir / "tokenizer_config.json", tokenizer_config.dump(2) + "\n");
}

}  // namespace nlpf
