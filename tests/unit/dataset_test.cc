// Dataset readers (TSV, CSV, JSONL) on in-memory inputs and small temporary files: parsing, line numbers,
// and every rejection path with its error code and a message naming FILE:LINE, the column and the value.
#include "text/dataset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <initializer_list>
#include <string>

#include "core/error.h"
#include "core/file_util.h"
#include "test_util.h"

namespace nlpf {
namespace {

// Runs `fn`, expects an Error of `code` whose message contains every part of `parts`.
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

ReaderOptions with_labels(int32_t num_labels) {
  ReaderOptions options;
  options.num_labels = num_labels;
  return options;
}

// ---- TSV ----

TEST(DatasetTsv, ParsesGlueLayout) {
  const Dataset d =
      parse_dataset("sentence\tlabel\nit 's a charming film .\t1\nbad \" quote\t0\n", "train.tsv");
  EXPECT_EQ(d.path, "train.tsv");
  EXPECT_EQ(d.num_labels, 2);
  EXPECT_FALSE(d.has_text_b);
  ASSERT_EQ(d.size(), 2);
  EXPECT_EQ(d.examples[0].text, "it 's a charming film .");
  EXPECT_EQ(d.examples[0].label, 1);
  EXPECT_EQ(d.examples[0].line, 2);
  EXPECT_EQ(d.examples[1].text, "bad \" quote");  // quotes are plain characters in TSV
  EXPECT_EQ(d.examples[1].label, 0);
  EXPECT_EQ(d.examples[1].line, 3);
  EXPECT_TRUE(d.examples[1].text_b.empty());
}

TEST(DatasetTsv, ColumnsByNameInAnyOrder) {
  ReaderOptions options;
  options.text_column = "question";
  options.text_b_column = "sentence";
  const Dataset d =
      parse_dataset("idx\tlabel\tsentence\tquestion\n7\t1\tthe answer\twhat ?\n", "qnli.tsv", options);
  EXPECT_TRUE(d.has_text_b);
  ASSERT_EQ(d.size(), 1);
  EXPECT_EQ(d.examples[0].text, "what ?");
  EXPECT_EQ(d.examples[0].text_b, "the answer");
  EXPECT_EQ(d.examples[0].label, 1);
}

TEST(DatasetTsv, CrlfBomNoFinalNewlineAndTrailingEmptyLines) {
  const Dataset a = parse_dataset("\xEF\xBB\xBFsentence\tlabel\r\nfine\t1\r\nok\t0", "a.tsv");
  ASSERT_EQ(a.size(), 2);
  EXPECT_EQ(a.examples[0].text, "fine");
  EXPECT_EQ(a.examples[1].text, "ok");
  EXPECT_EQ(a.examples[1].label, 0);
  const Dataset b = parse_dataset("sentence\tlabel\nfine\t1\n\n\r\n", "b.tsv");
  EXPECT_EQ(b.size(), 1);
}

TEST(DatasetTsv, EmptyTextIsAnExample) {
  const Dataset d = parse_dataset("sentence\tlabel\n\t1\n", "e.tsv");
  ASSERT_EQ(d.size(), 1);
  EXPECT_EQ(d.examples[0].text, "");
}

TEST(DatasetTsv, WrongFieldCount) {
  expect_error([] { parse_dataset("sentence\tlabel\ngood\t1\nno label here\n", "dev.tsv"); },
               ErrorCode::INVALID_ARGUMENT, {"dev.tsv:3:", "expected 2 tab-separated fields, got 1"});
  expect_error([] { parse_dataset("sentence\tlabel\na\tb\t1\n", "dev.tsv"); }, ErrorCode::INVALID_ARGUMENT,
               {"dev.tsv:2:", "expected 2 tab-separated fields, got 3"});
}

TEST(DatasetTsv, EmptyLineInTheMiddleIsAnError) {
  expect_error([] { parse_dataset("sentence\tlabel\na\t1\n\nb\t0\n", "dev.tsv"); },
               ErrorCode::INVALID_ARGUMENT, {"dev.tsv:3:", "empty line"});
}

TEST(DatasetTsv, MissingColumnListsTheHeader) {
  expect_error([] { parse_dataset("text\tlabel\na\t1\n", "x.tsv"); }, ErrorCode::INVALID_ARGUMENT,
               {"x.tsv", "no column 'sentence'", "'text', 'label'"});
  expect_error([] { parse_dataset("sentence\tscore\na\t1\n", "x.tsv"); }, ErrorCode::INVALID_ARGUMENT,
               {"x.tsv", "no column 'label'", "'sentence', 'score'"});
}

TEST(DatasetTsv, DuplicateRequestedColumn) {
  expect_error([] { parse_dataset("sentence\tlabel\tlabel\na\t1\t0\n", "x.tsv"); },
               ErrorCode::INVALID_ARGUMENT, {"x.tsv:1:", "'label'", "more than once"});
}

TEST(DatasetTsv, NoExamples) {
  expect_error([] { parse_dataset("", "empty.tsv"); }, ErrorCode::INVALID_ARGUMENT,
               {"empty.tsv", "no examples"});
  expect_error([] { parse_dataset("\n\n", "blank.tsv"); }, ErrorCode::INVALID_ARGUMENT,
               {"blank.tsv", "no examples"});
  expect_error([] { parse_dataset("sentence\tlabel\n", "header.tsv"); }, ErrorCode::INVALID_ARGUMENT,
               {"header.tsv", "no examples"});
}

TEST(DatasetTsv, BadLabels) {
  for (const std::string bad : {"1.0", "", "pos", "2", "-1", " 1", "1 ", "99999999999999999999", "0x1"}) {
    SCOPED_TRACE(bad);
    expect_error([&] { parse_dataset("sentence\tlabel\nfine\t0\ntext\t" + bad + "\n", "train.tsv"); },
                 ErrorCode::INVALID_ARGUMENT,
                 {"train.tsv:3:", "column 'label'", "invalid label '" + bad + "'", "[0, 2)"});
  }
}

TEST(DatasetTsv, NumLabelsWidensTheRange) {
  const Dataset d = parse_dataset("sentence\tlabel\na\t2\nb\t01\n", "m.tsv", with_labels(3));
  EXPECT_EQ(d.num_labels, 3);
  EXPECT_EQ(d.examples[0].label, 2);
  EXPECT_EQ(d.examples[1].label, 1);  // leading zeros are still a decimal integer
  expect_error([] { parse_dataset("sentence\tlabel\nb\t007\n", "m.tsv", with_labels(3)); },
               ErrorCode::INVALID_ARGUMENT, {"m.tsv:2:", "'007'", "[0, 3)"});
  expect_error([] { parse_dataset("sentence\tlabel\na\t1\n", "m.tsv", with_labels(0)); },
               ErrorCode::INVALID_ARGUMENT, {"m.tsv", "num_labels"});
}

TEST(DatasetTsv, InvalidUtf8NamesLineColumnAndOffset) {
  expect_error([] { parse_dataset("sentence\tlabel\nok\t1\nab\xC3(\t0\n", "u.tsv"); },
               ErrorCode::INVALID_ARGUMENT, {"u.tsv:3:", "column 'sentence'", "UTF-8", "byte offset 2"});
  // Overlong '/', a UTF-16 surrogate, and a code point above U+10FFFF are all rejected.
  for (const std::string bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "x\xE2\x82"}) {
    expect_error([&] { parse_dataset("sentence\tlabel\n" + bad + "\t1\n", "u.tsv"); },
                 ErrorCode::INVALID_ARGUMENT, {"u.tsv:2:", "UTF-8"});
  }
  const Dataset d = parse_dataset("sentence\tlabel\ncaf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\t1\n", "u.tsv");
  EXPECT_EQ(d.examples[0].text, "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
}

TEST(DatasetTsv, MissingLabelsAllowedForTestSplits) {
  ReaderOptions options;
  options.allow_missing_labels = true;
  const Dataset d = parse_dataset("index\tsentence\n0\tunlabelled\n", "test.tsv", options);
  ASSERT_EQ(d.size(), 1);
  EXPECT_EQ(d.examples[0].label, kNoLabel);
  const Dataset e = parse_dataset("sentence\tlabel\na\t\nb\t1\n", "test.tsv", options);
  EXPECT_EQ(e.examples[0].label, kNoLabel);
  EXPECT_EQ(e.examples[1].label, 1);
  expect_error([&] { parse_dataset("sentence\tlabel\na\tx\n", "test.tsv", options); },
               ErrorCode::INVALID_ARGUMENT, {"test.tsv:2:", "'x'"});
}

TEST(DatasetTsv, MessagesEscapeControlBytes) {
  expect_error([] { parse_dataset("sentence\tlabel\na\t1\x01\n", "c.tsv"); }, ErrorCode::INVALID_ARGUMENT,
               {"c.tsv:2:", "'1\\x01'"});
}

// ---- CSV ----

TEST(DatasetCsv, QuotingPerRfc4180) {
  const std::string csv =
      "label,sentence\r\n"
      "1,\"a, b and \"\"c\"\"\"\r\n"
      "0,\"two\nlines\"\r\n"
      "1,plain \"inner\" quote\r\n"
      "0,\"\"\r\n";
  const Dataset d = parse_dataset(csv, "data.csv");
  ASSERT_EQ(d.size(), 4);
  EXPECT_EQ(d.examples[0].text, "a, b and \"c\"");
  EXPECT_EQ(d.examples[0].line, 2);
  EXPECT_EQ(d.examples[1].text, "two\nlines");
  EXPECT_EQ(d.examples[1].line, 3);
  EXPECT_EQ(d.examples[2].text, "plain \"inner\" quote");
  EXPECT_EQ(d.examples[2].line, 5);  // the quoted newline above moved it down one line
  EXPECT_EQ(d.examples[3].text, "");
  EXPECT_EQ(d.examples[3].label, 0);
}

TEST(DatasetCsv, QuotedHeaderAndNoFinalNewline) {
  const Dataset d = parse_dataset("\"sentence\",\"label\"\n\"x\",\"1\"", "q.csv");
  ASSERT_EQ(d.size(), 1);
  EXPECT_EQ(d.examples[0].text, "x");
  EXPECT_EQ(d.examples[0].label, 1);
}

TEST(DatasetCsv, UnterminatedQuoteNamesWhereTheFieldBegan) {
  expect_error([] { parse_dataset("sentence,label\nok,1\n\"never closed,0\nmore\nlines\n", "bad.csv"); },
               ErrorCode::INVALID_ARGUMENT, {"bad.csv:3:", "unterminated"});
}

TEST(DatasetCsv, GarbageAfterClosingQuote) {
  expect_error([] { parse_dataset("sentence,label\n\"a\"b,1\n", "bad.csv"); }, ErrorCode::INVALID_ARGUMENT,
               {"bad.csv:2:", "after the closing quote"});
}

TEST(DatasetCsv, WrongFieldCountAndEmptyLine) {
  expect_error([] { parse_dataset("sentence,label\na,b,1\n", "bad.csv"); }, ErrorCode::INVALID_ARGUMENT,
               {"bad.csv:2:", "expected 2 comma-separated fields, got 3"});
  expect_error([] { parse_dataset("sentence,label\n\"multi\nline\",1\nshort\n", "bad.csv"); },
               ErrorCode::INVALID_ARGUMENT, {"bad.csv:4:", "got 1"});
  expect_error([] { parse_dataset("sentence,label\na,1\n\nb,0\n", "bad.csv"); }, ErrorCode::INVALID_ARGUMENT,
               {"bad.csv:3:", "empty line"});
  const Dataset d = parse_dataset("sentence,label\na,1\n\r\n\n", "ok.csv");  // trailing blank lines are fine
  EXPECT_EQ(d.size(), 1);
}

TEST(DatasetCsv, MissingColumnAndNoExamples) {
  expect_error([] { parse_dataset("text,label\na,1\n", "c.csv"); }, ErrorCode::INVALID_ARGUMENT,
               {"c.csv", "'sentence'", "'text', 'label'"});
  expect_error([] { parse_dataset("sentence,label\r\n", "c.csv"); }, ErrorCode::INVALID_ARGUMENT,
               {"c.csv", "no examples"});
  expect_error([] { parse_dataset("", "c.csv"); }, ErrorCode::INVALID_ARGUMENT, {"c.csv", "no examples"});
}

TEST(DatasetCsv, BadLabelNamesLineOfItsRow) {
  expect_error([] { parse_dataset("sentence,label\n\"a\nb\",1\nc,pos\n", "c.csv"); },
               ErrorCode::INVALID_ARGUMENT, {"c.csv:4:", "column 'label'", "'pos'"});
}

// ---- JSONL ----

TEST(DatasetJsonl, ObjectsPerLineWithIntOrStringLabels) {
  ReaderOptions options;
  options.text_column = "text";
  const std::string jsonl =
      "{\"text\": \"first \\\"quoted\\\" \\u00e9\", \"label\": 1, \"extra\": [1, 2]}\n"
      "\n"
      "   \r\n"
      "{\"label\": \"0\", \"text\": \"second\"}\r\n";
  const Dataset d = parse_dataset(jsonl, "train.jsonl", options);
  ASSERT_EQ(d.size(), 2);
  EXPECT_EQ(d.examples[0].text, "first \"quoted\" \xC3\xA9");
  EXPECT_EQ(d.examples[0].label, 1);
  EXPECT_EQ(d.examples[0].line, 1);
  EXPECT_EQ(d.examples[1].text, "second");
  EXPECT_EQ(d.examples[1].label, 0);
  EXPECT_EQ(d.examples[1].line, 4);
}

TEST(DatasetJsonl, PairsAndMissingLabels) {
  ReaderOptions options;
  options.text_column = "premise";
  options.text_b_column = "hypothesis";
  options.num_labels = 3;
  options.allow_missing_labels = true;
  const Dataset d = parse_dataset(
      "{\"premise\": \"p\", \"hypothesis\": \"h\", \"label\": 2}\n{\"premise\": \"q\", \"hypothesis\": "
      "\"\"}\n"
      "{\"premise\": \"r\", \"hypothesis\": \"i\", \"label\": null}\n",
      "mnli.json", options);
  ASSERT_EQ(d.size(), 3);
  EXPECT_TRUE(d.has_text_b);
  EXPECT_EQ(d.examples[0].text_b, "h");
  EXPECT_EQ(d.examples[0].label, 2);
  EXPECT_EQ(d.examples[1].label, kNoLabel);
  EXPECT_EQ(d.examples[2].label, kNoLabel);
}

TEST(DatasetJsonl, BadJsonNamesLineAndGist) {
  expect_error(
      [] {
        parse_dataset("{\"sentence\": \"a\", \"label\": 1}\n{\"sentence\": \"b\", \"label\": }\n", "d.jsonl");
      },
      ErrorCode::INVALID_ARGUMENT, {"d.jsonl:2:", "invalid JSON", "syntax error"});
  expect_error([] { parse_dataset("{\"sentence\": \"a\", \"label\": 1} trailing\n", "d.jsonl"); },
               ErrorCode::INVALID_ARGUMENT, {"d.jsonl:1:", "invalid JSON"});
  expect_error([] { parse_dataset("{\"sentence\": \"a\xFF\", \"label\": 1}\n", "d.jsonl"); },
               ErrorCode::INVALID_ARGUMENT, {"d.jsonl:1:", "invalid JSON"});
  expect_error([] { parse_dataset("{\"sentence\": \"a\", \"label\": 1e999}\n", "d.jsonl"); },
               ErrorCode::INVALID_ARGUMENT, {"d.jsonl:1:", "invalid JSON", "overflow"});
}

TEST(DatasetJsonl, WrongShapes) {
  expect_error([] { parse_dataset("[{\"sentence\": \"a\", \"label\": 1}]\n", "d.json"); },
               ErrorCode::INVALID_ARGUMENT,
               {"d.json:1:", "expected a JSON object", "array", "not JSON Lines"});
  expect_error([] { parse_dataset("{\"text\": \"a\", \"label\": 1}\n", "d.jsonl"); },
               ErrorCode::INVALID_ARGUMENT, {"d.jsonl:1:", "no field 'sentence'", "'label', 'text'"});
  expect_error([] { parse_dataset("{\"sentence\": 5, \"label\": 1}\n", "d.jsonl"); },
               ErrorCode::INVALID_ARGUMENT, {"d.jsonl:1:", "'sentence' must be a string", "number"});
  expect_error([] { parse_dataset("{\"sentence\": \"a\"}\n", "d.jsonl"); }, ErrorCode::INVALID_ARGUMENT,
               {"d.jsonl:1:", "'label' is missing"});
  expect_error([] { parse_dataset("{\"sentence\": \"a\", \"label\": null}\n", "d.jsonl"); },
               ErrorCode::INVALID_ARGUMENT, {"d.jsonl:1:", "'label' is null"});
}

TEST(DatasetJsonl, BadLabels) {
  for (const std::string bad :
       {"1.0", "\"\"", "\"pos\"", "2", "-1", "true", "\"1.0\"", "4294967297", "[1]"}) {
    SCOPED_TRACE(bad);
    expect_error(
        [&] {
          parse_dataset(
              "{\"sentence\": \"a\", \"label\": 0}\n{\"sentence\": \"a\", \"label\": " + bad + "}\n",
              "d.jsonl");
        },
        ErrorCode::INVALID_ARGUMENT, {"d.jsonl:2:", "column 'label'", "invalid label", "[0, 2)"});
  }
}

TEST(DatasetJsonl, NoExamples) {
  expect_error([] { parse_dataset("\n  \n", "d.jsonl"); }, ErrorCode::INVALID_ARGUMENT,
               {"d.jsonl", "no examples"});
}

// ---- formats, files, GLUE folders ----

TEST(DatasetFormat, ByExtension) {
  EXPECT_EQ(format_from_path("a/train.tsv"), DatasetFormat::TSV);
  EXPECT_EQ(format_from_path("a/TRAIN.TSV"), DatasetFormat::TSV);
  EXPECT_EQ(format_from_path("x.csv"), DatasetFormat::CSV);
  EXPECT_EQ(format_from_path("x.jsonl"), DatasetFormat::JSONL);
  EXPECT_EQ(format_from_path("x.json"), DatasetFormat::JSONL);
  expect_error([] { format_from_path("data/train.txt"); }, ErrorCode::INVALID_ARGUMENT,
               {"data/train.txt", "'.txt'", ".tsv"});
  expect_error([] { parse_dataset("sentence\tlabel\na\t1\n", "noext"); }, ErrorCode::INVALID_ARGUMENT,
               {"noext"});
  // An explicit format overrides the name.
  ReaderOptions options;
  options.format = DatasetFormat::TSV;
  EXPECT_EQ(parse_dataset("sentence\tlabel\na\t1\n", "noext", options).size(), 1);
}

class DatasetFiles : public ::testing::Test {
 protected:
  testing_util::TempDir temp_{"dataset_test"};
  const std::filesystem::path dir_ = temp_.path();
};

TEST_F(DatasetFiles, ReadsFilesAndNamesThemInErrors) {
  write_file_atomic(dir_ / "train.tsv", "sentence\tlabel\ngood\t1\n");
  write_file_atomic(dir_ / "bad.csv", "sentence,label\ngood,7\n");
  const Dataset d = read_dataset(dir_ / "train.tsv");
  EXPECT_EQ(d.path, (dir_ / "train.tsv").string());
  ASSERT_EQ(d.size(), 1);
  const std::string bad = (dir_ / "bad.csv").string();
  expect_error([&] { read_dataset(bad); }, ErrorCode::INVALID_ARGUMENT, {bad + ":2:", "'7'"});
  const std::string missing = (dir_ / "missing.tsv").string();
  expect_error([&] { read_dataset(missing); }, ErrorCode::IO, {missing});
  expect_error([&] { read_dataset(dir_); }, ErrorCode::IO, {dir_.string(), "directory"});
}

TEST_F(DatasetFiles, FindGlueSplit) {
  write_file_atomic(dir_ / "train.tsv", "sentence\tlabel\na\t1\n");
  write_file_atomic(dir_ / "test.tsv", "index\tsentence\n0\ta\n");
  EXPECT_EQ(find_glue_split(dir_, "train"), dir_ / "train.tsv");
  expect_error([&] { find_glue_split(dir_, "dev"); }, ErrorCode::IO,
               {dir_.string(), "dev.tsv", "'test.tsv', 'train.tsv'"});
  expect_error([&] { find_glue_split(dir_ / "nowhere", "train"); }, ErrorCode::IO,
               {"nowhere", "no such directory"});
  expect_error([&] { find_glue_split(dir_ / "train.tsv", "train"); }, ErrorCode::IO, {"not a directory"});
}

}  // namespace
}  // namespace nlpf
