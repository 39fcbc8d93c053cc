// The synthetic demo task: same seed same bytes, balanced labels, files that our readers load, labels that
// follow negation and contrast exactly as an independent word-level reading of the text says, and sentence
// lengths that make truncation to 16 and 8 tokens lose the deciding words while 32 keeps all of them.
#include "experiment/synthetic_task.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/file_util.h"
#include "model/bert_config.h"
#include "test_util.h"
#include "text/dataset.h"
#include "text/tokenizer.h"

namespace nlpf {
namespace {

using testing_util::TempDir;

const std::string kModel = kSyntheticModelName;
const std::vector<std::string> kFiles = {"data/train.tsv", "data/dev.tsv", kModel + "/config.json",
                                         kModel + "/vocab.txt", kModel + "/tokenizer_config.json"};

void expect_error(const std::function<void()>& fn, ErrorCode code, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    const std::string message = e.what();
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "message spans lines: " << message;
  }
}

std::vector<std::string> words_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// 1 for a positive adjective, 0 for a negative one, -1 for any other word (the test's own lists).
int32_t adjective_polarity(const std::string& word) {
  static const std::set<std::string> positive = {"good",     "great",     "fun",   "moving", "clever",
                                                 "charming", "brilliant", "funny", "warm",   "smart"};
  static const std::set<std::string> negative = {"bad",  "dull",  "boring", "awful", "weak",
                                                 "slow", "messy", "bland",  "silly", "flat"};
  if (positive.count(word)) return 1;
  if (negative.count(word)) return 0;
  return -1;
}

// An independent reading of a sentence from its words only: the main clause is found from the contrast
// word and its position; returns the index of that clause's adjective and whether a negator precedes it.
std::pair<size_t, bool> main_adjective(const std::vector<std::string>& w) {
  static const std::set<std::string> negators = {"not", "never", "hardly"};
  size_t begin = 0, end = w.size();
  const auto but = std::find(w.begin(), w.end(), "but");
  const auto although = std::find(w.begin(), w.end(), "although");
  if (but != w.end()) {
    begin = static_cast<size_t>(but - w.begin()) + 1;  // "A but B": B
  } else if (although == w.begin()) {
    begin = static_cast<size_t>(std::find(w.begin(), w.end(), ",") - w.begin()) + 1;  // "although A , B": B
  } else if (although != w.end()) {
    end = static_cast<size_t>(although - w.begin());  // "A , although B": A
  }
  size_t adjective = w.size();
  bool negated = false;
  for (size_t i = begin; i < end; ++i) {
    if (adjective_polarity(w[i]) >= 0) adjective = i;
    if (negators.count(w[i])) negated = true;
  }
  return {adjective, negated};
}

int32_t label_from_words(const std::string& text) {
  const std::vector<std::string> w = words_of(text);
  const auto [adjective, negated] = main_adjective(w);
  if (adjective == w.size()) {
    ADD_FAILURE() << "no adjective in the main clause of: " << text;
    return -1;
  }
  return negated ? 1 - adjective_polarity(w[adjective]) : adjective_polarity(w[adjective]);
}

TEST(SyntheticTask, SameSeedSameBytesOtherSeedOtherData) {
  TempDir a("synth_a"), b("synth_b"), c("synth_c");
  const SyntheticTaskOptions options{300, 60, 42};
  write_synthetic_task(a.path(), options);
  write_synthetic_task(b.path(), options);
  write_synthetic_task(c.path(), SyntheticTaskOptions{300, 60, 43});
  for (const std::string& f : kFiles) {
    EXPECT_EQ(read_file(a / f), read_file(b / f)) << f;
    EXPECT_FALSE(read_file(a / f).empty()) << f;
  }
  EXPECT_NE(read_file(a / "data/train.tsv"), read_file(c / "data/train.tsv"));
  EXPECT_NE(read_file(a / "data/dev.tsv"), read_file(c / "data/dev.tsv"));
  EXPECT_NE(read_file(a / "data/train.tsv"), read_file(a / "data/dev.tsv"));
  // The model does not depend on the seed (its weights come from phase1 --init random --seed).
  EXPECT_EQ(read_file(a / kModel / "config.json"), read_file(c / kModel / "config.json"));
}

TEST(SyntheticTask, FirstSentencesArePinned) {
  // Any change to the generator or to Philox changes these: a deliberate change updates them.
  const std::vector<SyntheticSentence> s = generate_synthetic_sentences(3, 42, 1);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].text(), "frankly , the film was not moving this time");
  EXPECT_EQ(s[0].label(), 0);
  EXPECT_EQ(s[1].text(), "i thought the first story seemed slow to watch but the plot is hardly flat");
  EXPECT_EQ(s[1].label(), 1);
  EXPECT_EQ(s[2].text(), "overall , the dialogue seemed great");
  EXPECT_EQ(s[2].label(), 1);
}

TEST(SyntheticTask, LabelsBalanced) {
  TempDir dir("synth_balance");
  write_synthetic_task(dir.path(), SyntheticTaskOptions{400, 101, 7});
  const Dataset train = read_dataset(dir / "data/train.tsv");
  const Dataset dev = read_dataset(dir / "data/dev.tsv");
  ASSERT_EQ(train.size(), 400);
  ASSERT_EQ(dev.size(), 101);
  const auto positives = [](const Dataset& d) {
    return std::count_if(d.examples.begin(), d.examples.end(), [](const Example& e) { return e.label == 1; });
  };
  EXPECT_EQ(positives(train), 200);
  EXPECT_NEAR(static_cast<double>(positives(dev)), 50.5, 0.5);
}

TEST(SyntheticTask, FilesLoadWithOurReaders) {
  TempDir dir("synth_load");
  write_synthetic_task(dir.path(), SyntheticTaskOptions{200, 80, 42});
  EXPECT_EQ(find_glue_split(dir / "data", "train"), dir / "data/train.tsv");
  const Dataset train = read_dataset(dir / "data/train.tsv");
  const Dataset dev = read_dataset(dir / "data/dev.tsv");
  EXPECT_EQ(train.size(), 200);
  EXPECT_EQ(dev.size(), 80);

  const BertConfig config = BertConfig::load(dir / kSyntheticModelName);
  EXPECT_EQ(config.hidden_size, 64);
  EXPECT_EQ(config.num_hidden_layers, 4);
  EXPECT_EQ(config.num_labels(), 2);
  EXPECT_GE(config.max_position_embeddings, 32);

  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_model_dir(dir / kSyntheticModelName);
  EXPECT_TRUE(tokenizer.options().do_lower_case);
  EXPECT_EQ(config.vocab_size, tokenizer.vocab().size());
  EXPECT_EQ(tokenizer.vocab().tokens(), synthetic_vocabulary());
  // Every word is a whole token: the word pieces joined with spaces give the sentence back, no [UNK].
  for (const Dataset* d : {&train, &dev}) {
    for (const Example& e : d->examples) {
      const std::vector<std::string> pieces = tokenizer.tokenize(e.text);
      std::string joined;
      for (const std::string& p : pieces) joined += (joined.empty() ? "" : " ") + p;
      ASSERT_EQ(joined, e.text);
      const std::vector<int32_t> ids = tokenizer.tokenize_ids(e.text);
      ASSERT_EQ(std::count(ids.begin(), ids.end(), tokenizer.vocab().unk_id()), 0) << e.text;
    }
  }
}

TEST(SyntheticTask, LabelsFollowTheWordsAndTheirOrder) {
  TempDir dir("synth_words");
  write_synthetic_task(dir.path(), SyntheticTaskOptions{500, 200, 42});
  int64_t contrast = 0, concession_disagrees = 0;
  for (const char* split : {"data/train.tsv", "data/dev.tsv"}) {
    for (const Example& e : read_dataset(dir / split).examples) {
      ASSERT_EQ(e.label, label_from_words(e.text)) << split << ":" << e.line << ": " << e.text;
    }
  }
  for (const SyntheticSentence& s : generate_synthetic_sentences(2000, 42, 1)) {
    if (s.form == SyntheticForm::PLAIN) continue;
    ++contrast;
    const SyntheticClause& other = &s.main_clause() == &s.first ? s.second : s.first;
    if (other.polarity() != s.label()) ++concession_disagrees;
  }
  // The concession mostly contradicts the label, so reading the wrong clause is worse than chance.
  EXPECT_GT(contrast, 1200);
  EXPECT_GT(concession_disagrees, contrast * 6 / 10);
  EXPECT_LT(concession_disagrees, contrast * 8 / 10);
}

TEST(SyntheticTask, NegationFlipsTheLabelOnlyInTheMainClause) {
  int64_t checked = 0;
  for (SyntheticSentence s : generate_synthetic_sentences(200, 5, 1)) {
    const int32_t label = s.label();
    const std::string text = s.text();
    SyntheticSentence negated = s;
    SyntheticClause& main = negated.main_clause();
    main.negator = main.negator >= 0 ? -1 : 0;  // add "not", or drop the negator there is
    EXPECT_EQ(negated.label(), 1 - label) << text;
    EXPECT_NE(negated.text(), text);
    EXPECT_EQ(label_from_words(negated.text()), 1 - label) << negated.text();
    if (s.form != SyntheticForm::PLAIN) {
      SyntheticSentence conceded = s;
      SyntheticClause& other = &conceded.main_clause() == &conceded.first ? conceded.second : conceded.first;
      other.negator = other.negator >= 0 ? -1 : 1;
      EXPECT_EQ(conceded.label(), label) << conceded.text();
      EXPECT_EQ(label_from_words(conceded.text()), label) << conceded.text();
    }
    ++checked;
  }
  EXPECT_EQ(checked, 200);
  // Word order decides: swapping the clauses around "but" swaps the label when they disagree.
  SyntheticSentence s;
  s.form = SyntheticForm::BUT;
  s.first.positive_adjective = true;
  s.second.positive_adjective = false;
  EXPECT_EQ(s.label(), 0) << s.text();
  std::swap(s.first, s.second);
  EXPECT_EQ(s.label(), 1) << s.text();
  EXPECT_EQ(s.text(), "the movie was bad but the movie was good") << "the default clause changed";
}

TEST(SyntheticTask, LengthsFitThirtyTwoTokensButNotEight) {
  // Truncation to k tokens keeps [CLS], the first k - 2 words and [SEP]; it loses the label where the main
  // clause's adjective (at 1-based word position p) lies past word k - 2.
  int64_t cut_at_8 = 0, cut_at_16 = 0, n = 0;
  for (const SyntheticSentence& s : generate_synthetic_sentences(2000, 42, 2)) {
    const std::vector<std::string> w = words_of(s.text());
    ASSERT_LE(static_cast<int64_t>(w.size()) + 2, 32) << s.text();
    const size_t p = main_adjective(w).first + 1;
    ASSERT_LE(p, w.size()) << s.text();
    if (p > 8 - 2) ++cut_at_8;
    if (p > 16 - 2) ++cut_at_16;
    ++n;
  }
  std::cout << "deciding adjective cut at 8 tokens: " << cut_at_8 << "/" << n << ", at 16: " << cut_at_16
            << "/" << n << "\n";
  EXPECT_GT(cut_at_8, n * 6 / 10);
  // About one sentence in six (measured: length 16 costs the demo model 9-10 points of accuracy).
  EXPECT_GT(cut_at_16, n * 12 / 100);
  EXPECT_LT(cut_at_16, n * 40 / 100);
}

TEST(SyntheticTask, DevHoldsNoTrainingSentence) {
  TempDir dir("synth_overlap");
  write_synthetic_task(dir.path(), SyntheticTaskOptions{3000, 500, 42});
  std::set<std::string> train;
  for (const Example& e : read_dataset(dir / "data/train.tsv").examples) train.insert(e.text);
  for (const Example& e : read_dataset(dir / "data/dev.tsv").examples) {
    EXPECT_EQ(train.count(e.text), 0u) << e.text;
  }
}

TEST(SyntheticTask, RejectsBadSizesAndUnwritableDirectories) {
  TempDir dir("synth_errors");
  expect_error(
      [&] {
        write_synthetic_task(dir.path(), SyntheticTaskOptions{0, 10, 1});
      },
      ErrorCode::INVALID_ARGUMENT, {"train_examples", "0"});
  expect_error(
      [&] {
        write_synthetic_task(dir.path(), SyntheticTaskOptions{10, -1, 1});
      },
      ErrorCode::INVALID_ARGUMENT, {"eval_examples", "-1"});
  const std::filesystem::path file = dir.write("a_file", "x");
  expect_error(
      [&] {
        write_synthetic_task(file / "task", SyntheticTaskOptions{10, 10, 1});
      },
      ErrorCode::IO, {(file / "task" / "data").string()});
}

}  // namespace
}  // namespace nlpf
