// config.json parsing and writing for BertConfig. Defaults follow transformers' BertConfig and
// PretrainedConfig (v4 and v5 agree on every field used here); errors name the file and the field.
#include "model/bert_config.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"

namespace nlpf {
namespace {

using nlohmann::json;

// `json` type names for messages ("got string \"768\"").
std::string describe(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(value.type_name()) + " " + text;
}

std::optional<int64_t> get_int(const json& config, const char* key, const std::string& source,
                               bool required) {
  const auto it = config.find(key);
  if (it == config.end()) {
    NLPF_CHECK(!required, ErrorCode::INVALID_ARGUMENT, source, ": missing required field \"", key, "\"");
    return std::nullopt;
  }
  const bool fits = it->is_number_integer() &&
                    (!it->is_number_unsigned() ||
                     it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  NLPF_CHECK(fits, ErrorCode::INVALID_ARGUMENT, source, ": field \"", key, "\" must be an integer, got ",
             describe(*it));
  return it->get<int64_t>();
}

std::optional<double> get_number(const json& config, const char* key, const std::string& source,
                                 bool nullable = false) {
  const auto it = config.find(key);
  if (it == config.end() || (nullable && it->is_null())) return std::nullopt;
  NLPF_CHECK(it->is_number(), ErrorCode::INVALID_ARGUMENT, source, ": field \"", key,
             "\" must be a number, got ", describe(*it));
  return it->get<double>();
}

std::optional<std::string> get_string(const json& config, const char* key, const std::string& source,
                                      bool nullable = false) {
  const auto it = config.find(key);
  if (it == config.end() || (nullable && it->is_null())) return std::nullopt;
  NLPF_CHECK(it->is_string(), ErrorCode::INVALID_ARGUMENT, source, ": field \"", key,
             "\" must be a string, got ", describe(*it));
  return it->get<std::string>();
}

bool get_bool(const json& config, const char* key, const std::string& source) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return false;
  NLPF_CHECK(it->is_boolean(), ErrorCode::INVALID_ARGUMENT, source, ": field \"", key,
             "\" must be true or false, got ", describe(*it));
  return it->get<bool>();
}

// id2label: {"0": "neg", "1": "pos"}; keys must be exactly 0..n-1 (a logit index for every label).
std::vector<std::string> parse_id2label(const json& value, const std::string& source) {
  NLPF_CHECK(value.is_object(), ErrorCode::INVALID_ARGUMENT, source,
             ": field \"id2label\" must be an object, got ", describe(value));
  std::vector<std::optional<std::string>> labels(value.size());
  for (const auto& [key, label] : value.items()) {
    const bool digits =
        !key.empty() && key.size() <= 9 && key.find_first_not_of("0123456789") == std::string::npos;
    NLPF_CHECK(digits, ErrorCode::INVALID_ARGUMENT, source, ": id2label key \"", key,
               "\" is not a non-negative integer");
    const size_t id = std::stoul(key);
    NLPF_CHECK(id < labels.size(), ErrorCode::INVALID_ARGUMENT, source, ": id2label key ", id,
               " is out of range for ", labels.size(), " labels (ids must be 0..", labels.size() - 1, ")");
    NLPF_CHECK(!labels[id].has_value(), ErrorCode::INVALID_ARGUMENT, source, ": id2label id ", id,
               " appears twice");
    NLPF_CHECK(label.is_string(), ErrorCode::INVALID_ARGUMENT, source, ": id2label[\"", key,
               "\"] must be a string, got ", describe(label));
    labels[id] = label.get<std::string>();
  }
  std::vector<std::string> out;
  for (auto& label : labels) out.push_back(std::move(*label));  // all set: n distinct keys in 0..n-1
  return out;
}

}  // namespace

void BertConfig::set_num_labels(int64_t n) {
  NLPF_CHECK(n >= 1, ErrorCode::INVALID_ARGUMENT, "num_labels must be positive, got ", n);
  id2label.clear();
  for (int64_t i = 0; i < n; ++i) id2label.push_back("LABEL_" + std::to_string(i));
}

void BertConfig::validate(const std::string& source) const {
  const std::pair<const char*, int64_t> sizes[] = {
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"intermediate_size", intermediate_size},
      {"max_position_embeddings", max_position_embeddings},
      {"type_vocab_size", type_vocab_size},
  };
  for (const auto& [name, value] : sizes) {
    NLPF_CHECK(value > 0, ErrorCode::INVALID_ARGUMENT, source, ": \"", name, "\" must be positive, got ",
               value);
  }
  NLPF_CHECK(hidden_size % num_attention_heads == 0, ErrorCode::INVALID_ARGUMENT, source, ": hidden_size ",
             hidden_size, " is not a multiple of num_attention_heads ", num_attention_heads);
  NLPF_CHECK(model_type == "bert", ErrorCode::UNSUPPORTED, source, ": model_type \"", model_type,
             "\" is not supported (only \"bert\")");
  NLPF_CHECK(hidden_act == "gelu", ErrorCode::UNSUPPORTED, source, ": hidden_act \"", hidden_act,
             "\" is not supported (only \"gelu\", the exact erf GELU)");
  NLPF_CHECK(position_embedding_type == "absolute", ErrorCode::UNSUPPORTED, source,
             ": position_embedding_type \"", position_embedding_type,
             "\" is not supported (only \"absolute\")");
  const std::pair<const char*, double> probabilities[] = {
      {"hidden_dropout_prob", hidden_dropout_prob},
      {"attention_probs_dropout_prob", attention_probs_dropout_prob},
      {"classifier_dropout", classifier_dropout.value_or(0.0)},
  };
  for (const auto& [name, value] : probabilities) {
    NLPF_CHECK(value >= 0.0 && value < 1.0, ErrorCode::INVALID_ARGUMENT, source, ": \"", name,
               "\" must be in [0, 1), got ", value);
  }
  NLPF_CHECK(initializer_range >= 0.0, ErrorCode::INVALID_ARGUMENT, source,
             ": \"initializer_range\" must be >= 0, got ", initializer_range);
  NLPF_CHECK(layer_norm_eps > 0.0, ErrorCode::INVALID_ARGUMENT, source,
             ": \"layer_norm_eps\" must be positive, got ", layer_norm_eps);
  if (pad_token_id) {
    NLPF_CHECK(*pad_token_id >= 0 && *pad_token_id < vocab_size, ErrorCode::INVALID_ARGUMENT, source,
               ": pad_token_id ", *pad_token_id, " is outside the vocabulary [0, ", vocab_size, ")");
  }
  NLPF_CHECK(!id2label.empty(), ErrorCode::INVALID_ARGUMENT, source, ": the model needs at least one label");
  if (problem_type) {
    NLPF_CHECK(*problem_type == "regression" || *problem_type == "single_label_classification" ||
                   *problem_type == "multi_label_classification",
               ErrorCode::INVALID_ARGUMENT, source, ": problem_type \"", *problem_type,
               "\" is not one of regression, single_label_classification, multi_label_classification");
    NLPF_CHECK(!(*problem_type == "single_label_classification" && num_labels() == 1),
               ErrorCode::INVALID_ARGUMENT, source,
               ": problem_type single_label_classification needs at least 2 labels");
  }
}

BertConfig BertConfig::from_json_string(std::string_view text, const std::string& source) {
  json parsed;
  try {
    parsed = json::parse(text);
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, source, ": not valid JSON: ", e.what());
  }
  return from_json(parsed, source);
}

BertConfig BertConfig::from_json(const json& config, const std::string& source) {
  NLPF_CHECK(config.is_object(), ErrorCode::INVALID_ARGUMENT, source, ": expected a JSON object, got ",
             describe(config));
  BertConfig c;
  // A config without model_type predates AutoConfig; its layout is BERT's when the rest parses.
  if (auto v = get_string(config, "model_type", source)) c.model_type = *v;
  NLPF_CHECK(c.model_type == "bert", ErrorCode::UNSUPPORTED, source, ": model_type \"", c.model_type,
             "\" is not supported (only \"bert\")");
  c.vocab_size = *get_int(config, "vocab_size", source, true);
  c.hidden_size = *get_int(config, "hidden_size", source, true);
  c.num_hidden_layers = *get_int(config, "num_hidden_layers", source, true);
  c.num_attention_heads = *get_int(config, "num_attention_heads", source, true);
  c.intermediate_size = *get_int(config, "intermediate_size", source, true);
  c.max_position_embeddings = *get_int(config, "max_position_embeddings", source, true);
  c.type_vocab_size = *get_int(config, "type_vocab_size", source, true);
  if (auto v = get_string(config, "hidden_act", source)) c.hidden_act = *v;
  if (auto v = get_number(config, "hidden_dropout_prob", source)) c.hidden_dropout_prob = *v;
  if (auto v = get_number(config, "attention_probs_dropout_prob", source))
    c.attention_probs_dropout_prob = *v;
  if (auto v = get_number(config, "initializer_range", source)) c.initializer_range = *v;
  if (auto v = get_number(config, "layer_norm_eps", source)) c.layer_norm_eps = *v;
  if (config.contains("pad_token_id") && config["pad_token_id"].is_null()) {
    c.pad_token_id.reset();
  } else if (auto v = get_int(config, "pad_token_id", source, false)) {
    c.pad_token_id = *v;
  }
  if (auto v = get_string(config, "position_embedding_type", source)) c.position_embedding_type = *v;
  c.classifier_dropout = get_number(config, "classifier_dropout", source, true);
  c.problem_type = get_string(config, "problem_type", source, true);
  NLPF_CHECK(!get_bool(config, "is_decoder", source), ErrorCode::UNSUPPORTED, source,
             ": is_decoder true is not supported (encoder-only BERT)");
  NLPF_CHECK(!get_bool(config, "add_cross_attention", source), ErrorCode::UNSUPPORTED, source,
             ": add_cross_attention true is not supported (encoder-only BERT)");

  // HF: id2label, when present, decides the labels (num_labels is derived from it; a disagreeing
  // num_labels is only warned about there, and ignored here too). label2id is derived on writing.
  if (config.contains("id2label") && !config["id2label"].is_null()) {
    c.id2label = parse_id2label(config["id2label"], source);
  } else if (auto n = get_int(config, "num_labels", source, false)) {
    NLPF_CHECK(*n >= 1, ErrorCode::INVALID_ARGUMENT, source, ": \"num_labels\" must be positive, got ", *n);
    c.set_num_labels(*n);
  }
  if (config.contains("label2id") && !config["label2id"].is_null()) {
    const json& label2id = config["label2id"];
    NLPF_CHECK(label2id.is_object(), ErrorCode::INVALID_ARGUMENT, source,
               ": field \"label2id\" must be an object, got ", describe(label2id));
  }
  if (config.contains("architectures") && !config["architectures"].is_null()) {
    const json& names = config["architectures"];
    NLPF_CHECK(names.is_array(), ErrorCode::INVALID_ARGUMENT, source,
               ": field \"architectures\" must be a list of strings, got ", describe(names));
    for (const json& name : names) {
      NLPF_CHECK(name.is_string(), ErrorCode::INVALID_ARGUMENT, source,
                 ": field \"architectures\" must be a list of strings, got an element ", describe(name));
      c.architectures.push_back(name.get<std::string>());
    }
  }
  c.validate(source);
  return c;
}

BertConfig BertConfig::load(const std::filesystem::path& path) {
  const std::filesystem::path file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  return from_json_string(read_file(file), file.string());
}

json BertConfig::to_json() const {
  json out = json::object();
  out["architectures"] = json::array({"BertForSequenceClassification"});
  out["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
  out["classifier_dropout"] = classifier_dropout ? json(*classifier_dropout) : json(nullptr);
  out["hidden_act"] = hidden_act;
  out["hidden_dropout_prob"] = hidden_dropout_prob;
  out["hidden_size"] = hidden_size;
  json id2label_json = json::object();
  json label2id_json = json::object();
  for (size_t i = 0; i < id2label.size(); ++i) {
    id2label_json[std::to_string(i)] = id2label[i];
    label2id_json[id2label[i]] = i;  // a repeated label keeps its last id, as Python's dict(zip(...)) does
  }
  out["id2label"] = id2label_json;
  out["label2id"] = label2id_json;
  out["initializer_range"] = initializer_range;
  out["intermediate_size"] = intermediate_size;
  out["layer_norm_eps"] = layer_norm_eps;
  out["max_position_embeddings"] = max_position_embeddings;
  out["model_type"] = "bert";
  out["num_attention_heads"] = num_attention_heads;
  out["num_hidden_layers"] = num_hidden_layers;
  out["pad_token_id"] = pad_token_id ? json(*pad_token_id) : json(nullptr);
  out["position_embedding_type"] = position_embedding_type;
  out["problem_type"] = problem_type ? json(*problem_type) : json(nullptr);
  out["type_vocab_size"] = type_vocab_size;
  out["vocab_size"] = vocab_size;
  return out;
}

std::string BertConfig::to_json_string() const {
  return to_json().dump(2) + "\n";
}

}  // namespace nlpf
