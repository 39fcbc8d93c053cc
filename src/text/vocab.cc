// Vocabulary reading as Hugging Face's load_vocab does it: Python text mode (universal newlines, so
// "\r\n" and a lone "\r" end a line too), token = line without its newline, id = line number, and a
// token listed twice keeps the id of its last line (dict assignment) while both lines keep their ids.
#include "text/vocab.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>

#include "core/error.h"
#include "core/file_util.h"

namespace nlpf {

namespace {

constexpr std::array<std::string_view, 4> kRequiredTokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]"};

// Python decodes vocab.txt as strict UTF-8; a token it could not read must not load here either.
void check_utf8(std::string_view token, const std::string& source, size_t line) {
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(token.data());
  size_t pos = 0;
  while (pos < token.size()) {
    utf8proc_int32_t cp = 0;
    const utf8proc_ssize_t n =
        utf8proc_iterate(bytes + pos, static_cast<utf8proc_ssize_t>(token.size() - pos), &cp);
    NLPF_CHECK(n > 0, ErrorCode::INVALID_ARGUMENT, source, ":", line, ": invalid UTF-8 at byte ", pos,
               " of the token");
    pos += static_cast<size_t>(n);
  }
}

}  // namespace

Vocab Vocab::load(const std::filesystem::path& path) {
  const std::string data = read_file(path);
  const std::string source = path.string();
  NLPF_CHECK(!data.empty(), ErrorCode::INVALID_ARGUMENT, source, ": empty vocabulary file");
  std::vector<std::string> tokens;
  size_t start = 0;
  while (start < data.size()) {
    const size_t end = data.find_first_of("\r\n", start);
    if (end == std::string::npos) {
      tokens.emplace_back(data.substr(start));
      break;
    }
    tokens.emplace_back(data.substr(start, end - start));
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
  return from_tokens(std::move(tokens), source);
}

Vocab Vocab::from_tokens(std::vector<std::string> tokens, const std::string& source) {
  NLPF_CHECK(!tokens.empty(), ErrorCode::INVALID_ARGUMENT, source, ": empty vocabulary");
  NLPF_CHECK(tokens.size() <= static_cast<size_t>(INT32_MAX), ErrorCode::INVALID_ARGUMENT, source,
             ": vocabulary has ", tokens.size(), " tokens, more than int32 ids can hold");
  Vocab vocab;
  vocab.ids_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    check_utf8(tokens[i], source, i + 1);
    NLPF_CHECK(tokens[i].find_first_of("\r\n") == std::string::npos, ErrorCode::INVALID_ARGUMENT, source, ":",
               i + 1, ": a token holds a line break, which vocab.txt cannot represent");
    vocab.ids_.insert_or_assign(tokens[i], static_cast<int32_t>(i));
    vocab.max_token_bytes_ = std::max(vocab.max_token_bytes_, tokens[i].size());
  }
  vocab.tokens_ = std::move(tokens);
  std::array<int32_t, kRequiredTokens.size()> ids{};
  for (size_t k = 0; k < kRequiredTokens.size(); ++k) {
    const std::optional<int32_t> id = vocab.find(kRequiredTokens[k]);
    NLPF_CHECK(id.has_value(), ErrorCode::INVALID_ARGUMENT, source, ": vocabulary lacks the special token ",
               kRequiredTokens[k]);
    ids[k] = *id;
  }
  vocab.pad_id_ = ids[0];
  vocab.unk_id_ = ids[1];
  vocab.cls_id_ = ids[2];
  vocab.sep_id_ = ids[3];
  return vocab;
}

std::optional<int32_t> Vocab::find(std::string_view token) const {
  const auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string Vocab::serialize() const {
  std::string out;
  size_t bytes = 0;
  for (const std::string& token : tokens_) bytes += token.size() + 1;
  out.reserve(bytes);
  for (const std::string& token : tokens_) {
    out += token;
    out += '\n';
  }
  return out;
}

}  // namespace nlpf
