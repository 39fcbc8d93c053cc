// Hand-checked tests of Vocab and WordPieceTokenizer on a tiny in-memory vocabulary. Invalid UTF-8 is
// refused with Error(INVALID_ARGUMENT, "... invalid UTF-8 at byte N"): HF never sees such input (a Python
// str cannot hold it), so there is no reference behaviour to copy and silently replacing bytes would hide
// broken data. Known divergence from HF: code points whose category differs between utf8proc's Unicode
// version and Python's unicodedata (e.g. characters new in Unicode 15 are Cn, hence dropped, in Python
// 3.11) tokenise differently; everything else was checked against the slow tokenizer on random strings.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_util.h"
#include "text/tokenizer.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;
using Tokens = std::vector<std::string>;
using testing_util::TempDir;

const std::vector<std::string> kTokens = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]",    "[MASK]", "un", "##aff", "##able", "able", "hello", "world", "##s",
    ",",     "!",     "$",     "a",        "##a",    "é",  "e",     "cafe",   "中",   "文",    "α",     "##ς",
    "##σ",   "##α",   "i",     "##\u0307", "wy",     "x",  "y",     "z",      "w",    "##yz"};

WordPieceTokenizer make_tokenizer(TokenizerOptions options = {}) {
  return WordPieceTokenizer(Vocab::from_tokens(kTokens), options);
}

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Runs `fn`, expecting an nlpf::Error of `code` whose message contains every one of `parts`.
template <typename Fn>
void expect_error(Fn&& fn, ErrorCode code, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    for (const std::string& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

std::string vocab_text() {
  std::string out;
  for (const std::string& t : kTokens) out += t + "\n";
  return out;
}

TEST(TokenizerWordPiece, GreedyLongestMatchWithContinuationPrefix) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.tokenize("unaffable"), (Tokens{"un", "##aff", "##able"}));
  EXPECT_EQ(tok.tokenize("able ables"), (Tokens{"able", "able", "##s"}));
  EXPECT_EQ(tok.tokenize_ids("hello world"), (std::vector<int32_t>{9, 10}));
}

TEST(TokenizerWordPiece, NoBacktrackingAfterAGreedyChoice) {
  // "wy" is the longest prefix of "wyz", and "##z" is not in the vocabulary: HF gives [UNK] for the whole
  // word rather than trying "w" + "##yz".
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.tokenize("wyz"), (Tokens{"[UNK]"}));
  EXPECT_EQ(tok.tokenize("wy wyz"), (Tokens{"wy", "[UNK]"}));
  EXPECT_EQ(tok.tokenize("hellox world"), (Tokens{"[UNK]", "world"}));
}

TEST(TokenizerWordPiece, WordsOverOneHundredCodePointsAreUnknown) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.tokenize(repeat("a", 100)).size(), 100u);
  EXPECT_EQ(tok.tokenize(repeat("a", 101)), (Tokens{"[UNK]"}));
  // The limit counts code points after accent stripping: 100 x "é" is 100 x "e" (no "##e": [UNK]), not 200.
  EXPECT_EQ(tok.tokenize(repeat("\u00e9", 100)), (Tokens{"[UNK]"}));
  TokenizerOptions options;
  options.max_input_chars_per_word = 3;
  EXPECT_EQ(make_tokenizer(options).tokenize("aaa aaaa"), (Tokens{"a", "##a", "##a", "[UNK]"}));
}

TEST(TokenizerBasic, PunctuationSplitIncludingAsciiSymbols) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.tokenize("hello,world!"), (Tokens{"hello", ",", "world", "!"}));
  EXPECT_EQ(tok.tokenize("$a"), (Tokens{"$", "a"}));
}

TEST(TokenizerBasic, CleansControlsAndSplitsOnUnicodeSpaces) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.tokenize("hel\x01lo\t wo\u200brld"), (Tokens{"hello", "world"}));
  EXPECT_EQ(tok.tokenize("hello\u00a0world\u3000a\u2028a"), (Tokens{"hello", "world", "a", "a"}));
  EXPECT_EQ(tok.tokenize("a\x0b"
                         "a"),
            (Tokens{"a", "##a"}));                                     // \v is Cc: dropped, not a space
  EXPECT_EQ(tok.tokenize(std::string("x\0y", 3)), (Tokens{"[UNK]"}));  // "xy" is not in the vocabulary
  EXPECT_TRUE(tok.tokenize(" \t\r\n\ufffd ").empty());
}

TEST(TokenizerBasic, LowerCasesAndStripsAccentsByDefault) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.tokenize("HELLO Caf\u00e9 CAFE\u0301"), (Tokens{"hello", "cafe", "cafe"}));
  // Python's str.lower(): final sigma, and the accent of the two-code-point lower case of U+0130.
  EXPECT_EQ(tok.tokenize("\u0391\u03a3 \u0391\u03a3\u0391"), (Tokens{"α", "##ς", "α", "##σ", "##α"}));
  EXPECT_EQ(tok.tokenize("\u0130"), (Tokens{"i"}));
}

TEST(TokenizerBasic, ExplicitStripAccentsFalseKeepsMarks) {
  TokenizerOptions options;
  options.strip_accents_set = true;
  options.strip_accents = false;
  const WordPieceTokenizer tok = make_tokenizer(options);
  EXPECT_EQ(tok.tokenize("\u0130"), (Tokens{"i", "##\u0307"}));
  EXPECT_EQ(tok.tokenize("E\u0301"), (Tokens{"é"}));  // NFC composes before lower-casing
}

TEST(TokenizerBasic, CasedModeComposesWithNfcButKeepsCase) {
  TokenizerOptions options;
  options.do_lower_case = false;
  const WordPieceTokenizer tok = make_tokenizer(options);
  EXPECT_EQ(tok.tokenize("e\u0301 hello HELLO"), (Tokens{"é", "hello", "[UNK]"}));
}

TEST(TokenizerBasic, ChineseCharactersAreSeparateWords) {
  EXPECT_EQ(make_tokenizer().tokenize("中文a"), (Tokens{"中", "文", "a"}));
  TokenizerOptions options;
  options.tokenize_chinese_chars = false;
  EXPECT_EQ(make_tokenizer(options).tokenize("中文"), (Tokens{"[UNK]"}));
}

TEST(TokenizerBasic, SpecialTokensInTextStayWhole) {
  const WordPieceTokenizer tok = make_tokenizer();
  EXPECT_EQ(tok.tokenize("hello[SEP]world [MASK]"), (Tokens{"hello", "[SEP]", "world", "[MASK]"}));
  // Lower case is plain text: '[' 'sep' ']' ("sep" is not in the tiny vocabulary).
  EXPECT_EQ(tok.tokenize("[sep]"), (Tokens{"[UNK]", "[UNK]", "[UNK]"}));
}

TEST(TokenizerEncode, AddsSpecialsAndTruncatesCountingThem) {
  const WordPieceTokenizer tok = make_tokenizer();
  const Encoding e = tok.encode("hello world hello", 4);
  EXPECT_EQ(e.input_ids, (std::vector<int32_t>{2, 9, 10, 3}));
  EXPECT_EQ(e.token_type_ids, (std::vector<int32_t>{0, 0, 0, 0}));
  EXPECT_EQ(e.attention_mask, (std::vector<int32_t>{1, 1, 1, 1}));
  EXPECT_EQ(tok.encode("unaffable", 3).input_ids, (std::vector<int32_t>{2, 5, 3}));  // cut inside a word
  EXPECT_EQ(tok.encode("hello", 2).input_ids, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(tok.encode("", 8).input_ids, (std::vector<int32_t>{2, 3}));
  expect_error([&] { tok.encode("hello", 1); }, ErrorCode::INVALID_ARGUMENT, {"max_length", "1"});
}

TEST(TokenizerEncode, PairLongestFirstTruncationAsTheSlowTokenizer) {
  const WordPieceTokenizer tok = make_tokenizer();
  const Encoding full = tok.encode_pair("hello", "world", 16);
  EXPECT_EQ(full.input_ids, (std::vector<int32_t>{2, 9, 3, 10, 3}));
  EXPECT_EQ(full.token_type_ids, (std::vector<int32_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(full.attention_mask, (std::vector<int32_t>(5, 1)));
  // 5 + 5 tokens into 8 - 3 = 5 places: equal lengths, 5 to remove: the second text loses the odd one.
  const Encoding odd = tok.encode_pair("x x x x x", "y y y y y", 8);
  EXPECT_EQ(odd.input_ids, (std::vector<int32_t>{2, 29, 29, 29, 3, 30, 30, 3}));
  EXPECT_EQ(odd.token_type_ids, (std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1}));
  // The longer text is cut first, down to the length of the shorter one.
  EXPECT_EQ(tok.encode_pair("x x x x x x", "y y", 7).input_ids,
            (std::vector<int32_t>{2, 29, 29, 3, 30, 30, 3}));
  EXPECT_EQ(tok.encode_pair("y y", "x x x x x x", 7).input_ids,
            (std::vector<int32_t>{2, 30, 30, 3, 29, 29, 3}));
  // One free place and a one-token first text: the second text empties entirely.
  EXPECT_EQ(tok.encode_pair("x", "y y y y y", 4).input_ids, (std::vector<int32_t>{2, 29, 3, 3}));
  EXPECT_EQ(tok.encode_pair("x", "y", 3).input_ids, (std::vector<int32_t>{2, 3, 3}));
  expect_error([&] { tok.encode_pair("x", "y", 2); }, ErrorCode::INVALID_ARGUMENT, {"max_length", "pair"});
}

TEST(TokenizerEncode, InvalidUtf8IsRefusedWithTheByteOffset) {
  const WordPieceTokenizer tok = make_tokenizer();
  expect_error([&] { tok.tokenize("ab\xff"); }, ErrorCode::INVALID_ARGUMENT, {"invalid UTF-8 at byte 2"});
  expect_error([&] { tok.tokenize("\xc3"); }, ErrorCode::INVALID_ARGUMENT, {"invalid UTF-8 at byte 0"});
  expect_error([&] { tok.tokenize("a\xc0\xaf"); }, ErrorCode::INVALID_ARGUMENT, {"invalid UTF-8 at byte 1"});
  expect_error([&] { tok.tokenize("\xed\xa0\x80"); }, ErrorCode::INVALID_ARGUMENT,
               {"invalid UTF-8 at byte 0"});
  // Checked over the whole text even when truncation would never reach the bad byte.
  expect_error([&] { tok.encode("hello world \xf4\x90\x80\x80", 2); }, ErrorCode::INVALID_ARGUMENT,
               {"invalid UTF-8 at byte 12"});
  expect_error([&] { tok.encode_pair("x", "y\x80", 8); }, ErrorCode::INVALID_ARGUMENT, {"invalid UTF-8"});
}

TEST(TokenizerVocab, LoadsLinesLikePythonUniversalNewlines) {
  TempDir dir;
  const fs::path path =
      dir.write("vocab.txt", "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\nx \nx \n\n[SEP]\ny");  // no final newline
  const Vocab vocab = Vocab::load(path);
  EXPECT_EQ(vocab.size(), 9);
  EXPECT_EQ(vocab.token(1), "[UNK]");
  EXPECT_EQ(vocab.token(4), "x ");  // trailing space is part of the token
  EXPECT_EQ(vocab.find("x "), 5);   // a duplicate maps to its last line
  EXPECT_EQ(vocab.sep_id(), 7);
  EXPECT_EQ(vocab.find(""), 6);
  EXPECT_EQ(vocab.find("y"), 8);
  EXPECT_FALSE(vocab.find("x").has_value());
  EXPECT_EQ(vocab.cls_id(), 2);
  EXPECT_EQ(vocab.pad_id(), 0);
  EXPECT_EQ(vocab.serialize(), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nx \nx \n\n[SEP]\ny\n");
  EXPECT_EQ(Vocab::from_tokens(kTokens).serialize(), vocab_text());
}

TEST(TokenizerVocab, MissingSpecialTokenNamesFileAndToken) {
  TempDir dir;
  const fs::path path = dir.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\nhello\n");
  expect_error([&] { Vocab::load(path); }, ErrorCode::INVALID_ARGUMENT, {path.string(), "[SEP]"});
  expect_error(
      [&] {
        Vocab::from_tokens({"[SEP]", "[UNK]", "[CLS]"}, "mem");
      },
      ErrorCode::INVALID_ARGUMENT, {"mem", "[PAD]"});
}

TEST(TokenizerVocab, EmptyUnreadableOrNonUtf8FilesAreErrors) {
  TempDir dir;
  const fs::path empty = dir.write("empty.txt", "");
  expect_error([&] { Vocab::load(empty); }, ErrorCode::INVALID_ARGUMENT, {empty.string(), "empty"});
  const fs::path missing = dir.path() / "missing.txt";
  expect_error([&] { Vocab::load(missing); }, ErrorCode::IO, {missing.string()});
  expect_error([&] { Vocab::load(dir.path()); }, ErrorCode::IO, {dir.path().string()});
  const fs::path bad = dir.write("bad.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\xff\n");
  expect_error([&] { Vocab::load(bad); }, ErrorCode::INVALID_ARGUMENT, {bad.string() + ":5", "UTF-8"});
  expect_error([&] { Vocab::from_tokens({}, "mem"); }, ErrorCode::INVALID_ARGUMENT, {"mem", "empty"});
  expect_error(
      [&] {
        Vocab::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a\nb"}, "mem");
      },
      ErrorCode::INVALID_ARGUMENT, {"mem:5", "line break"});
}

TEST(TokenizerFromModelDir, ReadsTokenizerConfigOrUsesDefaults) {
  TempDir dir;
  dir.write("vocab.txt", vocab_text());
  const WordPieceTokenizer defaults = WordPieceTokenizer::from_model_dir(dir.path());
  EXPECT_TRUE(defaults.options().do_lower_case);
  EXPECT_FALSE(defaults.options().strip_accents_set);
  EXPECT_EQ(defaults.tokenize("HELLO"), (Tokens{"hello"}));

  dir.write("tokenizer_config.json",
            R"({"do_lower_case": false, "strip_accents": true, "tokenize_chinese_chars": false, "x": 1})");
  const WordPieceTokenizer cased = WordPieceTokenizer::from_model_dir(dir.path());
  EXPECT_FALSE(cased.options().do_lower_case);
  EXPECT_TRUE(cased.options().strip_accents_set);
  EXPECT_TRUE(cased.options().strip_accents);
  EXPECT_FALSE(cased.options().tokenize_chinese_chars);
  EXPECT_EQ(cased.tokenize("HELLO e\u0301"), (Tokens{"[UNK]", "e"}));

  dir.write("tokenizer_config.json", R"({"do_lower_case": true, "strip_accents": null})");
  EXPECT_FALSE(WordPieceTokenizer::from_model_dir(dir.path()).options().strip_accents_set);
}

TEST(TokenizerFromModelDir, BadTokenizerConfigNamesTheFile) {
  TempDir dir;
  dir.write("vocab.txt", vocab_text());
  const fs::path config = dir.write("tokenizer_config.json", R"({"do_lower_case": tru)");
  expect_error([&] { WordPieceTokenizer::from_model_dir(dir.path()); }, ErrorCode::INVALID_ARGUMENT,
               {config.string(), "malformed JSON"});
  dir.write("tokenizer_config.json", R"(["do_lower_case"])");
  expect_error([&] { WordPieceTokenizer::from_model_dir(dir.path()); }, ErrorCode::INVALID_ARGUMENT,
               {config.string(), "object"});
  dir.write("tokenizer_config.json", R"({"do_lower_case": "yes"})");
  expect_error([&] { WordPieceTokenizer::from_model_dir(dir.path()); }, ErrorCode::INVALID_ARGUMENT,
               {config.string(), "do_lower_case"});
  dir.write("tokenizer_config.json", R"({"do_basic_tokenize": false})");
  expect_error([&] { WordPieceTokenizer::from_model_dir(dir.path()); }, ErrorCode::UNSUPPORTED,
               {config.string(), "do_basic_tokenize"});
  fs::remove(dir.path() / "vocab.txt");
  expect_error([&] { WordPieceTokenizer::from_model_dir(dir.path()); }, ErrorCode::IO, {"vocab.txt"});
}

}  // namespace
}  // namespace nlpf
