// WordPiece vocabulary (vocab.txt: one token per line, id = line number, as Hugging Face reads it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nlpf {

class Vocab {
 public:
  // Reads vocab.txt; throws Error naming the file when it is unreadable, empty, not UTF-8, or lacks one
  // of [PAD], [UNK], [CLS], [SEP]. Lines end at "\n", "\r\n" or "\r" (Python's universal newlines, as
  // HF's load_vocab reads it); a token listed twice maps to its last line, as HF's dict does.
  static Vocab load(const std::filesystem::path& path);
  // Builds from tokens in id order (tests, synthetic models); same validation as load().
  static Vocab from_tokens(std::vector<std::string> tokens, const std::string& source = "<memory>");

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  std::optional<int32_t> find(std::string_view token) const;
  const std::string& token(int32_t id) const { return tokens_.at(static_cast<size_t>(id)); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  int32_t pad_id() const { return pad_id_; }
  int32_t unk_id() const { return unk_id_; }
  int32_t cls_id() const { return cls_id_; }
  int32_t sep_id() const { return sep_id_; }
  // vocab.txt contents (one token per line, trailing newline).
  std::string serialize() const;
  // Byte length of the longest token: WordPiece never tries a longer candidate.
  size_t max_token_bytes() const { return max_token_bytes_; }

 private:
  // Transparent hash so that find(string_view) looks up without building a std::string.
  struct TokenHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t, TokenHash, std::equal_to<>> ids_;
  int32_t pad_id_ = 0, unk_id_ = 0, cls_id_ = 0, sep_id_ = 0;
  size_t max_token_bytes_ = 0;
};

}  // namespace nlpf
