// Dataset readers: GLUE TSV, RFC 4180 CSV and JSONL, all turned into Examples by one column mapper so
// that label and UTF-8 validation (and their messages) are the same whatever the format.
// Line numbers are 1-based and count '\n' bytes of the original file (a CSV row spanning several lines
// is reported at the line where it begins).
#include "text/dataset.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <system_error>

#include "core/error.h"
#include "core/file_util.h"
#include "text/csv.h"

namespace nlpf {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr size_t kMaxQuotedBytes = 48;    // a bad value is shown up to this many bytes in messages
constexpr size_t kMaxListedColumns = 20;  // columns listed when a requested one is missing

// Offset of the first byte that breaks UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF),
// or npos when `s` is valid.
size_t first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// `s` in single quotes for a one-line message: control bytes (and bytes of invalid UTF-8) escaped as
// \xNN, long values cut.
std::string shown(std::string_view s) {
  bool cut = false;
  if (s.size() > kMaxQuotedBytes) {
    size_t end = kMaxQuotedBytes;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;  // whole characters
    s = s.substr(0, end);
    cut = true;
  }
  const bool utf8 = first_invalid_utf8(s) == std::string_view::npos;
  std::string out = "'";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F || (c >= 0x80 && !utf8)) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += ch;
    }
  }
  out += cut ? "...'" : "'";
  return out;
}

std::string join_columns(std::span<const std::string_view> names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < kMaxListedColumns; ++i) {
    if (i > 0) out += ", ";
    out += shown(names[i]);
  }
  if (names.size() > kMaxListedColumns) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out.empty() ? "none" : out;
}

// What every format shares: the source's name for messages, the options, and the checks that turn raw
// values into an Example.
class ExampleBuilder {
 public:
  ExampleBuilder(const std::string& name, const ReaderOptions& options) : name_(name), options_(options) {}

  const std::string& name() const { return name_; }
  const ReaderOptions& options() const { return options_; }
  std::string where(int64_t line) const { return name_ + ":" + std::to_string(line); }

  void check_text(int64_t line, std::string_view column, std::string_view value) const {
    const size_t bad = first_invalid_utf8(value);
    NLPF_CHECK(bad == std::string_view::npos, ErrorCode::INVALID_ARGUMENT, where(line), ": column '", column,
               "' is not valid UTF-8 (byte offset ", bad, " in the field)");
  }

  // A label written as text (TSV/CSV cell, JSON string): decimal digits only, in [0, num_labels).
  int32_t parse_label(int64_t line, std::string_view value) const {
    if (value.empty() && options_.allow_missing_labels) return kNoLabel;
    int64_t label = -1;
    const bool digits = !value.empty() &&
                        std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), label);
      if (ec != std::errc() || end != value.data() + value.size()) label = -1;  // overflow
    }
    check_label(line, label, value);
    return static_cast<int32_t>(label);
  }

  void check_label(int64_t line, int64_t label, std::string_view value) const {
    NLPF_CHECK(label >= 0 && label < options_.num_labels, ErrorCode::INVALID_ARGUMENT, where(line),
               ": column '", options_.label_column, "': invalid label ", shown(value),
               " (expected an integer in [0, ", options_.num_labels, "))");
  }

  Example make(int64_t line, std::string_view text, std::string_view text_b, int32_t label) const {
    check_text(line, options_.text_column, text);
    if (!options_.text_b_column.empty()) check_text(line, options_.text_b_column, text_b);
    return Example{std::string(text), std::string(text_b), label, line};
  }

  Dataset finish(std::vector<Example> examples, std::string_view why_empty) const {
    NLPF_CHECK(!examples.empty(), ErrorCode::INVALID_ARGUMENT, name_, ": no examples (", why_empty, ")");
    return Dataset{name_, std::move(examples), options_.num_labels, !options_.text_b_column.empty()};
  }

 private:
  const std::string& name_;
  const ReaderOptions& options_;
};

// Finds the requested columns in a header row (TSV, CSV) and turns data rows into Examples.
class ColumnMapper {
 public:
  ColumnMapper(const ExampleBuilder& builder, std::span<const std::string_view> header) : builder_(builder) {
    const ReaderOptions& options = builder.options();
    text_ = find(header, options.text_column, /*required=*/true);
    if (!options.text_b_column.empty()) text_b_ = find(header, options.text_b_column, /*required=*/true);
    label_ = find(header, options.label_column, /*required=*/!options.allow_missing_labels);
  }

  Example convert(int64_t line, std::span<const std::string_view> fields) const {
    const std::string_view text_b = text_b_ >= 0 ? fields[static_cast<size_t>(text_b_)] : std::string_view();
    const int32_t label =
        label_ >= 0 ? builder_.parse_label(line, fields[static_cast<size_t>(label_)]) : kNoLabel;
    return builder_.make(line, fields[static_cast<size_t>(text_)], text_b, label);
  }

 private:
  int64_t find(std::span<const std::string_view> header, const std::string& column, bool required) const {
    int64_t found = -1;
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] != column) continue;
      NLPF_CHECK(found < 0, ErrorCode::INVALID_ARGUMENT, builder_.where(1), ": column '", column,
                 "' appears more than once in the header");
      found = static_cast<int64_t>(i);
    }
    NLPF_CHECK(found >= 0 || !required, ErrorCode::INVALID_ARGUMENT, builder_.name(), ": no column '", column,
               "' in the header (columns: ", join_columns(header), ")");
    return found;
  }

  const ExampleBuilder& builder_;
  int64_t text_ = -1, text_b_ = -1, label_ = -1;
};

void split_on(std::string_view line, char separator, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t start = 0;
  while (true) {
    const size_t end = line.find(separator, start);
    if (end == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return;
    }
    fields.push_back(line.substr(start, end - start));
    start = end + 1;
  }
}

// The lines of `contents` without their '\n' or "\r\n"; trailing empty lines dropped.
std::vector<std::string_view> split_lines(std::string_view contents) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < contents.size()) {
    size_t end = contents.find('\n', start);
    if (end == std::string_view::npos) end = contents.size();
    std::string_view line = contents.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

Dataset parse_tsv(std::string_view contents, const ExampleBuilder& builder) {
  const std::vector<std::string_view> lines = split_lines(contents);
  NLPF_CHECK(!lines.empty(), ErrorCode::INVALID_ARGUMENT, builder.name(),
             ": no examples (the file is empty)");
  std::vector<std::string_view> header;
  split_on(lines[0], '\t', header);
  const ColumnMapper mapper(builder, header);
  std::vector<Example> examples;
  examples.reserve(lines.size() - 1);
  std::vector<std::string_view> fields;
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto line = static_cast<int64_t>(i + 1);
    NLPF_CHECK(!lines[i].empty(), ErrorCode::INVALID_ARGUMENT, builder.where(line), ": empty line (expected ",
               header.size(), " tab-separated fields)");
    split_on(lines[i], '\t', fields);
    NLPF_CHECK(fields.size() == header.size(), ErrorCode::INVALID_ARGUMENT, builder.where(line),
               ": expected ", header.size(), " tab-separated fields, got ", fields.size());
    examples.push_back(mapper.convert(line, fields));
  }
  return builder.finish(std::move(examples), "only a header");
}

Dataset parse_csv(std::string_view contents, const ExampleBuilder& builder) {
  std::vector<CsvRecord> records = parse_csv_records(contents, builder.name());
  while (!records.empty() && records.back().blank) records.pop_back();
  NLPF_CHECK(!records.empty(), ErrorCode::INVALID_ARGUMENT, builder.name(),
             ": no examples (the file is empty)");

  const std::vector<std::string_view> header(records[0].fields.begin(), records[0].fields.end());
  const ColumnMapper mapper(builder, header);
  std::vector<Example> examples;
  examples.reserve(records.size() - 1);
  std::vector<std::string_view> fields;
  for (size_t i = 1; i < records.size(); ++i) {
    const CsvRecord& r = records[i];
    NLPF_CHECK(!r.blank, ErrorCode::INVALID_ARGUMENT, builder.where(r.line), ": empty line (expected ",
               header.size(), " comma-separated fields)");
    NLPF_CHECK(r.fields.size() == header.size(), ErrorCode::INVALID_ARGUMENT, builder.where(r.line),
               ": expected ", header.size(), " comma-separated fields, got ", r.fields.size());
    fields.assign(r.fields.begin(), r.fields.end());
    examples.push_back(mapper.convert(r.line, fields));
  }
  return builder.finish(std::move(examples), "only a header");
}

// nlohmann's error text without its "[json.exception...] " tag and the always-1 line number.
std::string json_error_gist(const nlohmann::json::exception& e) {
  std::string_view what = e.what();
  const size_t tag_end = what.find("] ");
  if (tag_end != std::string_view::npos) what.remove_prefix(tag_end + 2);
  std::string gist(what);
  const std::string at_line = "at line 1, ";
  if (const size_t p = gist.find(at_line); p != std::string::npos) gist.replace(p, at_line.size(), "at ");
  const std::string q = shown(gist);  // escapes control bytes that the "last read" part may echo
  return q.substr(1, q.size() - 2);
}

const char* json_type_name(const nlohmann::json& value) {
  return value.type_name();
}

std::string_view json_string_field(const ExampleBuilder& builder, int64_t line, const nlohmann::json& object,
                                   const std::string& key) {
  const auto it = object.find(key);
  if (it == object.end()) {
    std::vector<std::string> keys;
    for (auto field = object.begin(); field != object.end(); ++field) keys.push_back(field.key());
    const std::vector<std::string_view> views(keys.begin(), keys.end());
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, builder.where(line), ": no field '", key,
               "' (fields: ", join_columns(views), ")");
  }
  NLPF_CHECK(it->is_string(), ErrorCode::INVALID_ARGUMENT, builder.where(line), ": field '", key,
             "' must be a string, got ", json_type_name(*it));
  return it->get_ref<const std::string&>();
}

int32_t json_label(const ExampleBuilder& builder, int64_t line, const nlohmann::json& object) {
  const ReaderOptions& options = builder.options();
  const auto it = object.find(options.label_column);
  if (it == object.end() || it->is_null()) {
    NLPF_CHECK(options.allow_missing_labels, ErrorCode::INVALID_ARGUMENT, builder.where(line), ": field '",
               options.label_column, "' is ", it == object.end() ? "missing" : "null",
               " (expected an integer in [0, ", options.num_labels, "))");
    return kNoLabel;
  }
  if (it->is_string()) return builder.parse_label(line, it->get_ref<const std::string&>());
  int64_t label = -1;
  if (it->is_number_unsigned()) {
    const auto u = it->get<uint64_t>();
    label = u > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()) ? -1 : static_cast<int64_t>(u);
  } else if (it->is_number_integer()) {
    label = it->get<int64_t>();
  }
  builder.check_label(line, label, it->dump());
  return static_cast<int32_t>(label);
}

Dataset parse_jsonl(std::string_view contents, const ExampleBuilder& builder) {
  const ReaderOptions& options = builder.options();
  std::vector<Example> examples;
  int64_t line = 0;
  size_t start = 0;
  while (start < contents.size()) {
    ++line;
    size_t end = contents.find('\n', start);
    if (end == std::string_view::npos) end = contents.size();
    const std::string_view text = contents.substr(start, end - start);
    start = end + 1;
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;

    nlohmann::json object;
    try {
      object = nlohmann::json::parse(text.begin(), text.end());
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
      NLPF_THROW(ErrorCode::INVALID_ARGUMENT, builder.where(line), ": invalid JSON: ", json_error_gist(e));
    }
    if (!object.is_object()) {
      NLPF_THROW(ErrorCode::INVALID_ARGUMENT, builder.where(line), ": expected a JSON object per line, got ",
                 json_type_name(object),
                 object.is_array() && examples.empty() ? " (a JSON array file is not JSON Lines)" : "");
    }
    const std::string_view a = json_string_field(builder, line, object, options.text_column);
    const std::string_view b = options.text_b_column.empty()
                                   ? std::string_view()
                                   : json_string_field(builder, line, object, options.text_b_column);
    examples.push_back(builder.make(line, a, b, json_label(builder, line, object)));
  }
  return builder.finish(std::move(examples), "no JSON objects");
}

}  // namespace

const char* dataset_format_name(DatasetFormat format) {
  switch (format) {
    case DatasetFormat::AUTO:
      return "auto";
    case DatasetFormat::TSV:
      return "tsv";
    case DatasetFormat::CSV:
      return "csv";
    case DatasetFormat::JSONL:
      return "jsonl";
  }
  return "?";
}

DatasetFormat format_from_path(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".tsv") return DatasetFormat::TSV;
  if (ext == ".csv") return DatasetFormat::CSV;
  if (ext == ".jsonl" || ext == ".json" || ext == ".ndjson") return DatasetFormat::JSONL;
  NLPF_THROW(ErrorCode::INVALID_ARGUMENT, path.string(),
             ": cannot tell the dataset format from the extension ", ext.empty() ? "(none)" : shown(ext),
             "; expected .tsv, .csv, .jsonl or .json");
}

Dataset parse_dataset(std::string_view contents, const std::string& display_name,
                      const ReaderOptions& options) {
  NLPF_CHECK(options.num_labels >= 1, ErrorCode::INVALID_ARGUMENT, display_name,
             ": num_labels must be at least 1, got ", options.num_labels);
  NLPF_CHECK(!options.text_column.empty(), ErrorCode::INVALID_ARGUMENT, display_name,
             ": the text column name is empty");
  NLPF_CHECK(!options.label_column.empty(), ErrorCode::INVALID_ARGUMENT, display_name,
             ": the label column name is empty");
  const DatasetFormat format =
      options.format == DatasetFormat::AUTO ? format_from_path(display_name) : options.format;
  if (contents.starts_with(kUtf8Bom)) contents.remove_prefix(kUtf8Bom.size());  // spreadsheet exports
  const ExampleBuilder builder(display_name, options);
  switch (format) {
    case DatasetFormat::TSV:
      return parse_tsv(contents, builder);
    case DatasetFormat::CSV:
      return parse_csv(contents, builder);
    case DatasetFormat::JSONL:
    case DatasetFormat::AUTO:
      break;
  }
  return parse_jsonl(contents, builder);
}

Dataset read_dataset(const std::filesystem::path& path, const ReaderOptions& options) {
  const std::string contents = read_file(path);
  return parse_dataset(contents, path.string(), options);
}

std::filesystem::path find_glue_split(const std::filesystem::path& data_dir, std::string_view split) {
  std::error_code ec;
  NLPF_CHECK(std::filesystem::is_directory(data_dir, ec), ErrorCode::IO, data_dir.string(),
             std::filesystem::exists(data_dir, ec) ? ": not a directory" : ": no such directory",
             " (expected a GLUE folder holding train.tsv and dev.tsv)");
  const std::filesystem::path path = data_dir / (std::string(split) + ".tsv");
  if (std::filesystem::is_regular_file(path, ec)) return path;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string_view> views(names.begin(), names.end());
  NLPF_THROW(ErrorCode::IO, data_dir.string(), ": no ", split, ".tsv for the '", split,
             "' split (the folder holds: ", join_columns(views), ")");
}

}  // namespace nlpf
