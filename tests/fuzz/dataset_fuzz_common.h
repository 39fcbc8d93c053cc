// Shared body of the dataset-reader fuzz targets (fuzz_tsv, fuzz_csv, fuzz_jsonl). The first input byte
// picks reader options, so one corpus explores them all (seeds start with ' ' for the defaults):
//   bit 0: num_labels 3 instead of 2   bit 1: allow_missing_labels
//   bit 2: text_b_column "sentence2"   bit 3: text_column "text" instead of "sentence"
// The rest is the file's contents. nlpf::Error is an expected outcome; a crash, a sanitizer report, another
// exception type, a broken invariant of the result or a multi-line error message is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "text/dataset.h"

namespace nlpf::fuzz {

inline void check_dataset(const Dataset& d, const ReaderOptions& options, std::string_view contents,
                          bool has_header) {
  int64_t lines = 1;
  for (char c : contents) lines += c == '\n';
  if (d.examples.empty() || d.num_labels != options.num_labels) __builtin_trap();
  if (d.has_text_b != !options.text_b_column.empty()) __builtin_trap();
  int64_t previous = has_header ? 1 : 0;
  for (const Example& e : d.examples) {
    if (e.line <= previous || e.line > lines) __builtin_trap();  // rows begin on increasing lines
    previous = e.line;
    const bool labelled = e.label >= 0 && e.label < options.num_labels;
    if (!labelled && !(e.label == kNoLabel && options.allow_missing_labels)) __builtin_trap();
    if (options.text_b_column.empty() && !e.text_b.empty()) __builtin_trap();
  }
}

inline int fuzz_dataset(const uint8_t* data, size_t size, DatasetFormat format, const std::string& name) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  ReaderOptions options;
  options.format = format;
  options.num_labels = (flags & 1) ? 3 : 2;
  options.allow_missing_labels = (flags & 2) != 0;
  if (flags & 4) options.text_b_column = "sentence2";
  if (flags & 8) options.text_column = "text";
  const std::string_view contents(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const Dataset d = parse_dataset(contents, name, options);
    check_dataset(d, options, contents, format != DatasetFormat::JSONL);
  } catch (const Error& e) {
    const std::string_view message = e.what();
    if (message.empty() || message.find('\n') != std::string_view::npos) __builtin_trap();
    if (message.substr(0, name.size()) != name) __builtin_trap();  // every message names the source
  }
  return 0;
}

}  // namespace nlpf::fuzz
