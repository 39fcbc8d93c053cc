// WordPiece vocabulary (vocab.txt: one token per line, id = line number, as Hugging Face reads it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nlpf {

class Vocab {
 public:
  // Reads vocab.txt; throws Error naming the file when it is unreadable, empty, or lacks one of
  // [PAD], [UNK], [CLS], [SEP].
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

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t pad_id_ = 0, unk_id_ = 0, cls_id_ = 0, sep_id_ = 0;
};

}  // namespace nlpf
