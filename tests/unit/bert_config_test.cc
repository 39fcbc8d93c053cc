// BertConfig: transformers' defaults, required fields, type and range checks with errors naming
// config.json and the field, unsupported variants, and a to_json() that reads back identically.
#include "model/bert_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace nlpf {
namespace {

using nlohmann::json;

const char* kSource = "/models/x/config.json";

json minimal_config() {
  return {{"vocab_size", 100},        {"hidden_size", 16},       {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"intermediate_size", 32}, {"max_position_embeddings", 64},
          {"type_vocab_size", 2}};
}

// Expects parsing to fail with `code` and a message naming the file and every one of `parts`.
void expect_error(const json& config, ErrorCode code, std::initializer_list<std::string> parts) {
  try {
    BertConfig::from_json(config, kSource);
    ADD_FAILURE() << "expected an Error for " << config.dump();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(kSource), std::string::npos) << e.what();
    for (const std::string& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(BertConfig, MinimalConfigTakesTransformersDefaults) {
  const BertConfig c = BertConfig::from_json(minimal_config(), kSource);
  EXPECT_EQ(c.vocab_size, 100);
  EXPECT_EQ(c.head_size(), 4);
  EXPECT_EQ(c.hidden_act, "gelu");
  EXPECT_DOUBLE_EQ(c.hidden_dropout_prob, 0.1);
  EXPECT_DOUBLE_EQ(c.attention_probs_dropout_prob, 0.1);
  EXPECT_DOUBLE_EQ(c.initializer_range, 0.02);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.pad_token_id, 0);
  EXPECT_EQ(c.position_embedding_type, "absolute");
  EXPECT_FALSE(c.classifier_dropout.has_value());
  EXPECT_DOUBLE_EQ(c.effective_classifier_dropout(), 0.1);
  EXPECT_EQ(c.num_labels(), 2);
  EXPECT_EQ(c.id2label, (std::vector<std::string>{"LABEL_0", "LABEL_1"}));
  EXPECT_FALSE(c.problem_type.has_value());
  EXPECT_TRUE(c.architectures.empty());
  EXPECT_EQ(c.model_type, "bert");
}

TEST(BertConfig, ReadsEveryField) {
  json j = minimal_config();
  j["hidden_dropout_prob"] = 0.2;
  j["attention_probs_dropout_prob"] = 0;
  j["initializer_range"] = 0.05;
  j["layer_norm_eps"] = 1e-5;
  j["pad_token_id"] = nullptr;
  j["classifier_dropout"] = 0.3;
  j["id2label"] = {{"1", "pos"}, {"0", "neg"}, {"2", "neutral"}};
  j["num_labels"] = 5;  // HF: id2label decides, num_labels is only warned about
  j["problem_type"] = "single_label_classification";
  j["architectures"] = {"BertForSequenceClassification"};
  j["model_type"] = "bert";
  j["transformers_version"] = "4.8.2";  // unknown keys are ignored, as HF keeps them as attributes
  const BertConfig c = BertConfig::from_json(j, kSource);
  EXPECT_DOUBLE_EQ(c.hidden_dropout_prob, 0.2);
  EXPECT_DOUBLE_EQ(c.attention_probs_dropout_prob, 0.0);
  EXPECT_DOUBLE_EQ(c.initializer_range, 0.05);
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
  EXPECT_FALSE(c.pad_token_id.has_value());
  EXPECT_DOUBLE_EQ(c.effective_classifier_dropout(), 0.3);
  EXPECT_EQ(c.id2label, (std::vector<std::string>{"neg", "pos", "neutral"}));
  EXPECT_EQ(c.problem_type, "single_label_classification");
  EXPECT_EQ(c.architectures, std::vector<std::string>{"BertForSequenceClassification"});
}

TEST(BertConfig, NumLabelsWithoutId2labelNamesLabelsLikeHf) {
  json j = minimal_config();
  j["num_labels"] = 3;
  EXPECT_EQ(BertConfig::from_json(j, kSource).id2label,
            (std::vector<std::string>{"LABEL_0", "LABEL_1", "LABEL_2"}));
}

TEST(BertConfig, ReadsTheMiniLmConfig) {
  const char* text = R"({"_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536,
    "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12,
    "num_hidden_layers": 6, "pad_token_id": 0, "position_embedding_type": "absolute",
    "transformers_version": "4.8.2", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522})";
  const BertConfig c = BertConfig::from_json_string(text, kSource);
  EXPECT_EQ(c.hidden_size, 384);
  EXPECT_EQ(c.head_size(), 32);
  EXPECT_EQ(c.num_labels(), 2);
  EXPECT_EQ(c.architectures, std::vector<std::string>{"BertModel"});
}

class RequiredField : public ::testing::TestWithParam<const char*> {};

TEST_P(RequiredField, MissingIsInvalidArgumentNamingFileAndField) {
  json j = minimal_config();
  j.erase(GetParam());
  expect_error(j, ErrorCode::INVALID_ARGUMENT, {std::string("\"") + GetParam() + "\"", "missing"});
}

TEST_P(RequiredField, NonPositiveIsInvalidArgument) {
  for (int value : {0, -3}) {
    json j = minimal_config();
    j[GetParam()] = value;
    expect_error(j, ErrorCode::INVALID_ARGUMENT, {GetParam()});
  }
}

TEST_P(RequiredField, WrongTypeIsInvalidArgument) {
  for (const json& value : {json("16"), json(16.5), json(nullptr), json::array({16}), json(true)}) {
    json j = minimal_config();
    j[GetParam()] = value;
    expect_error(j, ErrorCode::INVALID_ARGUMENT, {GetParam(), "must be an integer"});
  }
}

INSTANTIATE_TEST_SUITE_P(BertConfig, RequiredField,
                         ::testing::Values("vocab_size", "hidden_size", "num_hidden_layers",
                                           "num_attention_heads", "intermediate_size",
                                           "max_position_embeddings", "type_vocab_size"));

TEST(BertConfig, MalformedJsonIsInvalidArgumentNamingFile) {
  try {
    BertConfig::from_json_string("{\"vocab_size\": 10,", kSource);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find(kSource), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  expect_error(json::array({1, 2}), ErrorCode::INVALID_ARGUMENT, {"expected a JSON object"});
}

TEST(BertConfig, HiddenSizeMustDivideByHeads) {
  json j = minimal_config();
  j["num_attention_heads"] = 3;
  expect_error(j, ErrorCode::INVALID_ARGUMENT, {"hidden_size 16", "num_attention_heads 3"});
}

TEST(BertConfig, UnsupportedVariantsNameTheValue) {
  for (const char* act : {"gelu_new", "relu", "gelu_fast", "silu"}) {
    json j = minimal_config();
    j["hidden_act"] = act;
    expect_error(j, ErrorCode::UNSUPPORTED, {"hidden_act", act});
  }
  json j = minimal_config();
  j["position_embedding_type"] = "relative_key";
  expect_error(j, ErrorCode::UNSUPPORTED, {"position_embedding_type", "relative_key"});
  j = minimal_config();
  j["model_type"] = "roberta";
  expect_error(j, ErrorCode::UNSUPPORTED, {"model_type", "roberta"});
  j = minimal_config();
  j["is_decoder"] = true;
  expect_error(j, ErrorCode::UNSUPPORTED, {"is_decoder"});
}

TEST(BertConfig, BadOptionalFieldsAreInvalidArgument) {
  const std::pair<const char*, json> cases[] = {
      {"hidden_dropout_prob", "0.1"},
      {"hidden_dropout_prob", 1.0},
      {"attention_probs_dropout_prob", -0.1},
      {"classifier_dropout", 1.5},
      {"layer_norm_eps", 0},
      {"initializer_range", -1},
      {"hidden_act", 3},
      {"pad_token_id", 100},
      {"pad_token_id", 1.5},
      {"problem_type", "ranking"},
      {"id2label", json::array()},
      {"architectures", "BertModel"},
      {"label2id", "x"},
  };
  for (const auto& [field, value] : cases) {
    json j = minimal_config();
    j[field] = value;
    expect_error(j, ErrorCode::INVALID_ARGUMENT, {field});
  }
}

TEST(BertConfig, Id2labelMustCoverZeroToNMinusOne) {
  for (const json& labels : {json{{"0", "a"}, {"2", "b"}}, json{{"x", "a"}}, json{{"-1", "a"}},
                             json{{"0", "a"}, {"1", 7}}, json::object()}) {
    json j = minimal_config();
    j["id2label"] = labels;
    expect_error(j, ErrorCode::INVALID_ARGUMENT, {});
  }
  json j = minimal_config();
  j["problem_type"] = "single_label_classification";
  j["num_labels"] = 1;
  expect_error(j, ErrorCode::INVALID_ARGUMENT, {"single_label_classification"});
}

TEST(BertConfig, ToJsonWritesSequenceClassificationConfigThatReadsBack) {
  json j = minimal_config();
  j["id2label"] = {{"0", "negative"}, {"1", "positive"}};
  j["architectures"] = {"BertModel"};
  j["classifier_dropout"] = 0.25;
  j["layer_norm_eps"] = 1e-7;
  const BertConfig c = BertConfig::from_json(j, kSource);
  const json out = c.to_json();
  EXPECT_EQ(out["architectures"], json::array({"BertForSequenceClassification"}));
  EXPECT_EQ(out["model_type"], "bert");
  EXPECT_EQ(out["hidden_act"], "gelu");
  EXPECT_EQ(out["id2label"], (json{{"0", "negative"}, {"1", "positive"}}));
  EXPECT_EQ(out["label2id"], (json{{"negative", 0}, {"positive", 1}}));
  EXPECT_TRUE(out["problem_type"].is_null());
  EXPECT_EQ(out["layer_norm_eps"].get<double>(), 1e-7);

  const BertConfig back = BertConfig::from_json_string(c.to_json_string(), "written");
  EXPECT_EQ(back.vocab_size, c.vocab_size);
  EXPECT_EQ(back.hidden_size, c.hidden_size);
  EXPECT_EQ(back.num_hidden_layers, c.num_hidden_layers);
  EXPECT_EQ(back.num_attention_heads, c.num_attention_heads);
  EXPECT_EQ(back.intermediate_size, c.intermediate_size);
  EXPECT_EQ(back.max_position_embeddings, c.max_position_embeddings);
  EXPECT_EQ(back.type_vocab_size, c.type_vocab_size);
  EXPECT_EQ(back.layer_norm_eps, c.layer_norm_eps);
  EXPECT_EQ(back.classifier_dropout, c.classifier_dropout);
  EXPECT_EQ(back.pad_token_id, c.pad_token_id);
  EXPECT_EQ(back.id2label, c.id2label);
  EXPECT_EQ(back.architectures, std::vector<std::string>{"BertForSequenceClassification"});
  EXPECT_EQ(c.to_json_string().back(), '\n');
}

TEST(BertConfig, LoadNamesMissingFile) {
  try {
    BertConfig::load("/nonexistent/dir/config.json");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::IO);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/config.json"), std::string::npos) << e.what();
  }
}

TEST(BertConfig, LoadsTheFixture) {
  const BertConfig c = BertConfig::load(std::string(NLPF_TEST_DATA) + "/checkpoint/tiny");
  EXPECT_EQ(c.hidden_size, 8);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.id2label, (std::vector<std::string>{"negative", "positive"}));
}

}  // namespace
}  // namespace nlpf
