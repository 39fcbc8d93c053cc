// BertConfig: the fields of Hugging Face's config.json that BERT uses, read and written with the same
// defaults as transformers' BertConfig. Only what our engine computes exactly is accepted (model_type
// "bert", hidden_act "gelu" = exact erf GELU, absolute positions, encoder only); anything else is refused
// with Error(UNSUPPORTED) naming config.json and the value, never silently approximated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nlpf {

struct BertConfig {
  // Required in config.json (transformers would default them; a checkpoint without them is suspect).
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  // Optional, with transformers' defaults.
  std::string hidden_act = "gelu";
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double initializer_range = 0.02;
  double layer_norm_eps = 1e-12;
  std::optional<int64_t> pad_token_id = 0;
  std::string position_embedding_type = "absolute";
  std::optional<double> classifier_dropout;  // null: the classifier uses hidden_dropout_prob
  // Labels: id2label[i] names logit i; num_labels() == id2label.size(). HF's default is LABEL_0, LABEL_1.
  std::vector<std::string> id2label = {"LABEL_0", "LABEL_1"};
  std::optional<std::string> problem_type;  // regression | single_label_classification | multi_label_...
  std::vector<std::string> architectures;   // as read; to_json() writes BertForSequenceClassification
  std::string model_type = "bert";

  int64_t num_labels() const { return static_cast<int64_t>(id2label.size()); }
  int64_t head_size() const { return hidden_size / num_attention_heads; }
  // Dropout probability of the classifier head (classifier_dropout, else hidden_dropout_prob), as HF.
  double effective_classifier_dropout() const { return classifier_dropout.value_or(hidden_dropout_prob); }
  // Resets id2label to LABEL_0..LABEL_{n-1} (HF's num_labels setter).
  void set_num_labels(int64_t n);

  // Throws Error(INVALID_ARGUMENT / UNSUPPORTED) naming `source` for an inconsistent or unsupported config.
  void validate(const std::string& source) const;

  // Parses config.json contents; `source` (the path) is named in every error. Validates.
  static BertConfig from_json_string(std::string_view text, const std::string& source);
  static BertConfig from_json(const nlohmann::json& json, const std::string& source);
  // Reads a config.json file (or DIR/config.json when given a directory).
  static BertConfig load(const std::filesystem::path& path);

  // The config.json of a BertForSequenceClassification that transformers reads (sorted keys, 2-space
  // indent, trailing newline; id2label keys are strings, label2id derived from id2label).
  nlohmann::json to_json() const;
  std::string to_json_string() const;
};

}  // namespace nlpf
