// RFC 4180 CSV records, shared by the dataset reader and pareto.csv reading: fields separated by ',',
// records by "\r\n" or '\n'; a field starting with '"' is quoted and may hold ',', newlines and "" (one
// quote). A '"' inside an unquoted field is taken literally (as writers that do not quote produce it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nlpf {

struct CsvRecord {
  std::vector<std::string> fields;
  int64_t line = 0;    // 1-based line where the record begins
  bool blank = false;  // an empty line, told apart from a record holding one empty quoted field
};

// Every record of `contents`, blank ones included. Errors: INVALID_ARGUMENT "NAME:LINE: ..." for an
// unterminated quoted field or a character after a closing quote.
std::vector<CsvRecord> parse_csv_records(std::string_view contents, const std::string& name);

}  // namespace nlpf
