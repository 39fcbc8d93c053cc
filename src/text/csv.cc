// RFC 4180 record splitting; see csv.h.
#include "text/csv.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace nlpf {
namespace {

class CsvReader {
 public:
  CsvReader(std::string_view contents, const std::string& name) : s_(contents), name_(name) {}

  // Reads the next record; false at the end of the input.
  bool next(CsvRecord& record) {
    if (pos_ >= s_.size()) return false;
    record.fields.clear();
    record.line = line_;
    record.blank = true;
    while (true) {
      std::string& field = record.fields.emplace_back();
      if (pos_ < s_.size() && s_[pos_] == '"') {
        record.blank = false;
        read_quoted(field);
      } else {
        const size_t end = std::min(s_.find_first_of(",\n", pos_), s_.size());
        std::string_view raw = s_.substr(pos_, end - pos_);
        if ((end == s_.size() || s_[end] == '\n') && !raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
        if (!raw.empty()) record.blank = false;
        field.assign(raw);
        pos_ = end;
      }
      if (pos_ >= s_.size()) return true;
      if (s_[pos_] == ',') {
        record.blank = false;
        ++pos_;
        continue;
      }
      // '\n' (a "\r\n" had its '\r' consumed above)
      ++pos_;
      ++line_;
      return true;
    }
  }

 private:
  std::string where(int64_t line) const { return name_ + ":" + std::to_string(line); }

  void read_quoted(std::string& field) {
    const int64_t start_line = line_;
    ++pos_;  // opening quote
    while (true) {
      NLPF_CHECK(pos_ < s_.size(), ErrorCode::INVALID_ARGUMENT, where(start_line),
                 ": unterminated quoted field (a '\"' opened here is never closed)");
      const char c = s_[pos_];
      if (c == '"') {
        if (pos_ + 1 < s_.size() && s_[pos_ + 1] == '"') {
          field += '"';
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      if (c == '\n') ++line_;
      field += c;
      ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '\r' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '\n') ++pos_;
    NLPF_CHECK(pos_ >= s_.size() || s_[pos_] == ',' || s_[pos_] == '\n', ErrorCode::INVALID_ARGUMENT,
               where(line_), ": unexpected character ", shown_byte(s_[pos_]),
               " after the closing quote of a field (a quote inside a quoted field is written \"\")");
  }

  // One byte for a message: printable ASCII in quotes, anything else as \xNN.
  static std::string shown_byte(char ch) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7F) return std::string("'") + ch + "'";
    char text[8];
    std::snprintf(text, sizeof text, "'\\x%02X'", c);
    return text;
  }

  std::string_view s_;
  const std::string& name_;
  size_t pos_ = 0;
  int64_t line_ = 1;
};

}  // namespace

std::vector<CsvRecord> parse_csv_records(std::string_view contents, const std::string& name) {
  CsvReader reader(contents, name);
  std::vector<CsvRecord> records;
  CsvRecord record;
  while (reader.next(record)) records.push_back(record);
  return records;
}

}  // namespace nlpf
