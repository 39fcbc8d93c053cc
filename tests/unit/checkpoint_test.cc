// Checkpoint directories: the committed tiny fixtures (F32, F16, BF16, sharded, BertModel names with a
// cls.* head), name mapping, HF-style head initialisation, staged saving, and every bad directory
// (code, message naming the file, nothing written). The MiniLM round trip runs when NLPF_MINILM_DIR is set.
#include "model/checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/random.h"
#include "model/safetensors.h"
#include "test_util.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kFixtures = fs::path(NLPF_TEST_DATA) / "checkpoint";

using testing_util::TempDir;

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) out.push_back(entry.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

Checkpoint load_quiet(const fs::path& dir, std::string* notices = nullptr) {
  std::ostringstream out;
  CheckpointLoadOptions options;
  options.notices = &out;
  Checkpoint ckpt = load_checkpoint(dir, options);
  if (notices != nullptr) *notices = out.str();
  return ckpt;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kFixtures / "tiny/model.safetensors"))
      GTEST_SKIP() << "fixtures missing under " << kFixtures;
  }
  // A copy of a fixture in a temporary directory, to be damaged by the test.
  fs::path copy_fixture(const std::string& name) {
    const fs::path dst = temp_.path() / name;
    fs::copy(kFixtures / name, dst, fs::copy_options::recursive);
    return dst;
  }
  // load_checkpoint(dir) must fail with `code`, naming `file` and every part, and write nothing.
  void expect_load_error(const fs::path& dir, ErrorCode code, const std::string& file,
                         std::initializer_list<std::string> parts = {}) {
    const std::vector<std::string> before = listing(temp_.path());
    try {
      load_quiet(dir);
      ADD_FAILURE() << "expected an Error loading " << dir;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos)
          << "wanted " << file << " in: " << e.what();
      for (const std::string& part : parts) {
        EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
            << "wanted " << part << " in: " << e.what();
      }
    }
    EXPECT_EQ(listing(temp_.path()), before) << "a failed load wrote files";
  }
  TempDir temp_;
};

TEST(CheckpointNames, ParameterSpecsFollowHfLayout) {
  BertConfig config;
  config.vocab_size = 50;
  config.hidden_size = 8;
  config.num_hidden_layers = 3;
  config.num_attention_heads = 2;
  config.intermediate_size = 12;
  config.max_position_embeddings = 16;
  config.set_num_labels(3);
  const std::vector<ParameterSpec> specs = bert_parameter_specs(config);
  ASSERT_EQ(specs.size(), 5u + 16u * 3u + 4u);
  EXPECT_EQ(specs.front().name, "bert.embeddings.word_embeddings.weight");
  EXPECT_EQ(specs.front().shape, (Shape{50, 8}));
  EXPECT_EQ(specs[5].name, "bert.encoder.layer.0.attention.self.query.weight");
  std::map<std::string, Shape> by_name;
  for (const ParameterSpec& s : specs) EXPECT_TRUE(by_name.emplace(s.name, s.shape).second) << s.name;
  EXPECT_EQ(by_name.at("bert.encoder.layer.2.intermediate.dense.weight"), (Shape{12, 8}));
  EXPECT_EQ(by_name.at("bert.encoder.layer.2.output.dense.weight"), (Shape{8, 12}));
  EXPECT_EQ(by_name.at("bert.embeddings.position_embeddings.weight"), (Shape{16, 8}));
  EXPECT_EQ(by_name.at("bert.embeddings.token_type_embeddings.weight"), (Shape{2, 8}));
  EXPECT_EQ(by_name.at("classifier.weight"), (Shape{3, 8}));
  EXPECT_EQ(by_name.at("classifier.bias"), (Shape{3}));
  EXPECT_EQ(specs.back().name, "classifier.bias");
}

TEST(CheckpointNames, CanonicalNamesMapLikeTransformers) {
  EXPECT_EQ(canonical_parameter_name("embeddings.word_embeddings.weight"),
            "bert.embeddings.word_embeddings.weight");
  EXPECT_EQ(canonical_parameter_name("bert.pooler.dense.bias"), "bert.pooler.dense.bias");
  EXPECT_EQ(canonical_parameter_name("classifier.weight"), "classifier.weight");
  EXPECT_EQ(canonical_parameter_name("encoder.layer.1.output.LayerNorm.gamma"),
            "bert.encoder.layer.1.output.LayerNorm.weight");
  EXPECT_EQ(canonical_parameter_name("bert.embeddings.LayerNorm.beta"), "bert.embeddings.LayerNorm.bias");
  EXPECT_EQ(canonical_parameter_name("cls.predictions.bias"), std::nullopt);
  EXPECT_EQ(canonical_parameter_name("bert.embeddings.position_ids"), std::nullopt);
  EXPECT_EQ(canonical_parameter_name("embeddings.position_ids"), std::nullopt);
}

TEST_F(CheckpointTest, LoadsTinyF32) {
  std::string notices;
  const Checkpoint ckpt = load_quiet(kFixtures / "tiny", &notices);
  EXPECT_EQ(notices, "");
  EXPECT_EQ(ckpt.config.hidden_size, 8);
  EXPECT_EQ(ckpt.config.id2label, (std::vector<std::string>{"negative", "positive"}));
  EXPECT_TRUE(ckpt.do_lower_case);
  EXPECT_EQ(ckpt.vocab.size(), 32);
  EXPECT_TRUE(ckpt.initialized.empty());
  const std::vector<ParameterSpec> specs = bert_parameter_specs(ckpt.config);
  ASSERT_EQ(ckpt.tensors.size(), specs.size());
  for (const ParameterSpec& spec : specs) {
    EXPECT_EQ(ckpt.tensor(spec.name).shape(), spec.shape) << spec.name;
    EXPECT_EQ(ckpt.tensor(spec.name).dtype(), DType::F32) << spec.name;
  }
  // The first classifier weight as numpy wrote it (tools/make_checkpoint_fixtures.py).
  EXPECT_NEAR(ckpt.tensor("classifier.weight").data<float>()[0], 0.0986028f, 1e-7f);
  EXPECT_THROW(ckpt.tensor("no.such.tensor"), Error);
}

TEST_F(CheckpointTest, SixteenBitCopiesKeepTheirDtypeAndRoundLikeOurConversions) {
  const Checkpoint f32 = load_quiet(kFixtures / "tiny");
  for (const auto& [name, dtype] : {std::pair{"tiny_f16", DType::F16}, std::pair{"tiny_bf16", DType::BF16}}) {
    const Checkpoint half = load_quiet(kFixtures / name);
    ASSERT_EQ(half.tensors.size(), f32.tensors.size());
    for (const auto& [param, tensor] : half.tensors) {
      EXPECT_EQ(tensor.dtype(), dtype) << name << " " << param;
      EXPECT_TRUE(same_bits(tensor, f32.tensor(param).to(dtype))) << name << " " << param;
    }
  }
}

TEST_F(CheckpointTest, ShardedEqualsSingleFile) {
  const Checkpoint single = load_quiet(kFixtures / "tiny");
  std::string notices;
  const Checkpoint sharded = load_quiet(kFixtures / "tiny_sharded", &notices);
  EXPECT_EQ(notices, "");
  ASSERT_EQ(sharded.tensors.size(), single.tensors.size());
  for (const auto& [name, tensor] : single.tensors)
    EXPECT_TRUE(same_bits(sharded.tensor(name), tensor)) << name;
}

TEST_F(CheckpointTest, BertModelNamesKeepPoolerAndInitialiseClassifier) {
  const Checkpoint single = load_quiet(kFixtures / "tiny");
  std::string notices;
  const Checkpoint ckpt = load_quiet(kFixtures / "tiny_bertmodel", &notices);
  EXPECT_EQ(ckpt.initialized, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  for (const auto& [name, tensor] : single.tensors) {
    if (name.starts_with("classifier.")) continue;
    EXPECT_TRUE(same_bits(ckpt.tensor(name), tensor)) << name;
  }
  const Tensor& w = ckpt.tensor("classifier.weight");
  const Tensor& b = ckpt.tensor("classifier.bias");
  EXPECT_EQ(w.shape(), (Shape{2, 8}));
  Tensor expected = Tensor::empty(DType::F32, {2, 8});
  fill_normal(expected, 0.0f, 0.02f, 42, kClassifierInitOffset);
  EXPECT_TRUE(same_bits(w, expected));
  for (int i = 0; i < 2; ++i) EXPECT_EQ(b.data<float>()[i], 0.0f);
  EXPECT_NE(notices.find("initialised classifier.weight, classifier.bias"), std::string::npos) << notices;
  EXPECT_NE(notices.find("seed 42"), std::string::npos) << notices;
  EXPECT_EQ(notices.find("cls."), std::string::npos)
      << "pre-training heads are ignored silently: " << notices;

  CheckpointLoadOptions options;
  options.init_seed = 7;
  options.quiet = true;
  const Checkpoint other = load_checkpoint(kFixtures / "tiny_bertmodel", options);
  EXPECT_FALSE(same_bits(other.tensor("classifier.weight"), w));
}

TEST_F(CheckpointTest, TfStyleLayerNormNamesAndExtrasLoad) {
  const Checkpoint single = load_quiet(kFixtures / "tiny");
  const fs::path dir = copy_fixture("tiny");
  std::vector<std::pair<std::string, Tensor>> renamed;
  for (const auto& [name, tensor] : single.tensors) {
    std::string stored = name;
    if (stored.ends_with("LayerNorm.weight")) stored = stored.substr(0, stored.size() - 6) + "gamma";
    if (stored.ends_with("LayerNorm.bias")) stored = stored.substr(0, stored.size() - 4) + "beta";
    renamed.emplace_back(stored, tensor);
  }
  renamed.emplace_back("bert.encoder.layer.0.attention.self.rotary.weight", Tensor::zeros(DType::F32, {2}));
  write_safetensors(dir / "model.safetensors", renamed);
  std::string notices;
  const Checkpoint ckpt = load_quiet(dir, &notices);
  for (const auto& [name, tensor] : single.tensors) EXPECT_TRUE(same_bits(ckpt.tensor(name), tensor)) << name;
  EXPECT_NE(notices.find("1 tensor(s) not used"), std::string::npos) << notices;
  EXPECT_NE(notices.find("rotary.weight"), std::string::npos) << notices;
}

TEST_F(CheckpointTest, SaveReloadsBitForBitWithHfFiles) {
  const Checkpoint ckpt = load_quiet(kFixtures / "tiny_bertmodel");
  const fs::path out = temp_.path() / "saved";
  save_checkpoint(out, ckpt.config, ckpt.tensors, ckpt.vocab, false);
  for (const char* file : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(out / file)) << file;
  }
  EXPECT_EQ(fs::directory_iterator(temp_.path())->path(), out);  // no staging directory left behind
  std::string notices;
  const Checkpoint back = load_quiet(out, &notices);
  EXPECT_EQ(notices, "");
  EXPECT_TRUE(back.initialized.empty());
  EXPECT_FALSE(back.do_lower_case);
  ASSERT_EQ(back.tensors.size(), ckpt.tensors.size());
  for (const auto& [name, tensor] : ckpt.tensors) EXPECT_TRUE(same_bits(back.tensor(name), tensor)) << name;
  EXPECT_EQ(read_file(out / "vocab.txt"), read_file(kFixtures / "tiny_bertmodel/vocab.txt"));

  const json config = json::parse(read_file(out / "config.json"));
  EXPECT_EQ(config["architectures"], json::array({"BertForSequenceClassification"}));
  EXPECT_EQ(config["dtype"], "float32");
  EXPECT_EQ(config["id2label"], (json{{"0", "LABEL_0"}, {"1", "LABEL_1"}}));
  const json tokenizer = json::parse(read_file(out / "tokenizer_config.json"));
  EXPECT_EQ(tokenizer,
            (json{{"do_lower_case", false}, {"model_max_length", 32}, {"tokenizer_class", "BertTokenizer"}}));
  const SafetensorsHeader header = read_safetensors_header(out / "model.safetensors");
  EXPECT_NE(header.find("bert.embeddings.word_embeddings.weight"), nullptr);
  EXPECT_NE(header.find("classifier.bias"), nullptr);
  EXPECT_EQ(header.metadata.at("format"), "pt");
}

TEST_F(CheckpointTest, SaveConvertsDtypeOnRequest) {
  const Checkpoint ckpt = load_quiet(kFixtures / "tiny");
  const fs::path out = temp_.path() / "half";
  CheckpointSaveOptions options;
  options.dtype = DType::BF16;
  save_checkpoint(out, ckpt.config, ckpt.tensors, ckpt.vocab, true, options);
  const Checkpoint back = load_quiet(out);
  const Checkpoint reference = load_quiet(kFixtures / "tiny_bf16");
  for (const auto& [name, tensor] : reference.tensors)
    EXPECT_TRUE(same_bits(back.tensor(name), tensor)) << name;
  EXPECT_EQ(json::parse(read_file(out / "config.json"))["dtype"], "bfloat16");

  const Checkpoint f16 = load_quiet(kFixtures / "tiny_f16");
  options.dtype.reset();  // keep the tensors' own dtype
  save_checkpoint(temp_.path() / "kept", f16.config, f16.tensors, f16.vocab, true, options);
  EXPECT_EQ(load_quiet(temp_.path() / "kept").tensor("classifier.weight").dtype(), DType::F16);
}

TEST_F(CheckpointTest, SaveRefusesExistingDirectoryAndBadTensors) {
  const Checkpoint ckpt = load_quiet(kFixtures / "tiny");
  const fs::path existing = temp_.path() / "existing";
  fs::create_directory(existing);
  std::ofstream(existing / "keep.txt") << "mine";
  try {
    save_checkpoint(existing, ckpt.config, ckpt.tensors, ckpt.vocab, true);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::IO) << e.what();
    EXPECT_NE(std::string(e.what()).find(existing.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(existing / "keep.txt"), "mine");

  auto wrong_shape = ckpt.tensors;
  wrong_shape["bert.pooler.dense.weight"] = Tensor::zeros(DType::F32, {8, 7});
  auto missing = ckpt.tensors;
  missing.erase("bert.encoder.layer.1.output.dense.bias");
  auto extra = ckpt.tensors;
  extra["cls.predictions.bias"] = Tensor::zeros(DType::F32, {32});
  auto integer = ckpt.tensors;
  integer["classifier.bias"] = Tensor::zeros(DType::I32, {2});
  const std::pair<std::map<std::string, Tensor>, std::string> cases[] = {
      {wrong_shape, "bert.pooler.dense.weight"},
      {missing, "bert.encoder.layer.1.output.dense.bias"},
      {extra, "cls.predictions.bias"},
      {integer, "classifier.bias"},
  };
  const fs::path out = temp_.path() / "out";
  for (const auto& [tensors, part] : cases) {
    try {
      save_checkpoint(out, ckpt.config, tensors, ckpt.vocab, true);
      ADD_FAILURE() << "expected an Error for " << part;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT) << e.what();
      EXPECT_NE(std::string(e.what()).find(out.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(out));
  }
  BertConfig bigger = ckpt.config;
  bigger.vocab_size = 16;  // smaller than the vocabulary: the embeddings no longer match either
  EXPECT_THROW(save_checkpoint(out, bigger, ckpt.tensors, ckpt.vocab, true), Error);
  EXPECT_EQ(listing(temp_.path()).size(), 2u) << "only existing/ and existing/keep.txt";
}

TEST_F(CheckpointTest, MissingOrUnreadableDirectory) {
  expect_load_error(temp_.path() / "nope", ErrorCode::IO, (temp_.path() / "nope").string());
  const fs::path dir = copy_fixture("tiny");
  fs::remove(dir / "model.safetensors");
  expect_load_error(dir, ErrorCode::IO, dir.string(), {"model.safetensors"});
  std::ofstream(dir / "pytorch_model.bin") << "not really";
  expect_load_error(dir, ErrorCode::UNSUPPORTED, (dir / "pytorch_model.bin").string(), {"convert"});
  fs::create_directory(dir / "model.safetensors");
  expect_load_error(dir, ErrorCode::IO, (dir / "model.safetensors").string());
}

TEST_F(CheckpointTest, CorruptSafetensorsNamesTheFile) {
  const fs::path dir = copy_fixture("tiny");
  const std::string bytes = read_file(dir / "model.safetensors");
  write_file_atomic(dir / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors").string());
  write_file_atomic(dir / "model.safetensors", "abc");
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors").string(), {"shorter"});
}

TEST_F(CheckpointTest, DtypeAndShapeMustMatchConfig) {
  const Checkpoint ckpt = load_quiet(kFixtures / "tiny");
  const fs::path dir = copy_fixture("tiny");
  std::vector<std::pair<std::string, Tensor>> tensors(ckpt.tensors.begin(), ckpt.tensors.end());
  for (auto& [name, tensor] : tensors) {
    if (name == "bert.encoder.layer.1.attention.self.key.bias") tensor = Tensor::zeros(DType::I32, {8});
  }
  write_safetensors(dir / "model.safetensors", tensors);
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors").string(),
                    {"bert.encoder.layer.1.attention.self.key.bias", "I32"});

  write_safetensors(dir / "model.safetensors", {ckpt.tensors.begin(), ckpt.tensors.end()});
  json config = json::parse(read_file(dir / "config.json"));
  config["vocab_size"] = 40;
  write_file_atomic(dir / "config.json", config.dump());
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors").string(),
                    {"bert.embeddings.word_embeddings.weight", "[32, 8]", "[40, 8]"});
  config["vocab_size"] = 32;
  config["intermediate_size"] = 12;
  write_file_atomic(dir / "config.json", config.dump());
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors").string(),
                    {"intermediate.dense.weight", "[12, 8]"});
  config["intermediate_size"] = 16;
  config["num_hidden_layers"] = 3;
  write_file_atomic(dir / "config.json", config.dump());
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors").string(),
                    {"missing 16 tensor(s)", "bert.encoder.layer.2.attention.self.query.weight"});
}

TEST_F(CheckpointTest, MissingEncoderTensorIsAnError) {
  const Checkpoint ckpt = load_quiet(kFixtures / "tiny");
  const fs::path dir = copy_fixture("tiny");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& item : ckpt.tensors) {
    if (item.first != "bert.embeddings.LayerNorm.bias") tensors.push_back(item);
  }
  write_safetensors(dir / "model.safetensors", tensors);
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors").string(),
                    {"bert.embeddings.LayerNorm.bias"});
}

TEST_F(CheckpointTest, DuplicateAfterMappingIsAnError) {
  const Checkpoint ckpt = load_quiet(kFixtures / "tiny");
  const fs::path dir = copy_fixture("tiny");
  std::vector<std::pair<std::string, Tensor>> tensors(ckpt.tensors.begin(), ckpt.tensors.end());
  tensors.emplace_back("embeddings.LayerNorm.gamma", ckpt.tensor("bert.embeddings.LayerNorm.weight"));
  write_safetensors(dir / "model.safetensors", tensors);
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors").string(),
                    {"embeddings.LayerNorm.gamma", "bert.embeddings.LayerNorm.weight"});
}

TEST_F(CheckpointTest, BadConfigJson) {
  const fs::path dir = copy_fixture("tiny");
  write_file_atomic(dir / "config.json", "{\"vocab_size\": 32,,}");
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "config.json").string(), {"not valid JSON"});
  json config = json::parse(read_file(kFixtures / "tiny/config.json"));
  config.erase("num_attention_heads");
  write_file_atomic(dir / "config.json", config.dump());
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "config.json").string(),
                    {"num_attention_heads"});
  fs::remove(dir / "config.json");
  expect_load_error(dir, ErrorCode::IO, (dir / "config.json").string());
}

TEST_F(CheckpointTest, BadVocabAndTokenizerConfig) {
  const fs::path dir = copy_fixture("tiny");
  const std::string vocab = read_file(dir / "vocab.txt");
  std::string without_sep = vocab;
  without_sep.erase(without_sep.find("[SEP]\n"), 6);
  write_file_atomic(dir / "vocab.txt", without_sep);
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "vocab.txt").string(), {"[SEP]"});
  write_file_atomic(dir / "vocab.txt", vocab + "extra1\nextra2\n");
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "vocab.txt").string(),
                    {"34 tokens", "vocab_size 32"});
  fs::remove(dir / "vocab.txt");
  expect_load_error(dir, ErrorCode::IO, (dir / "vocab.txt").string());
  write_file_atomic(dir / "vocab.txt", vocab);

  write_file_atomic(dir / "tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "tokenizer_config.json").string(),
                    {"do_lower_case"});
  write_file_atomic(dir / "tokenizer_config.json", "{");
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "tokenizer_config.json").string());
  fs::remove(dir / "tokenizer_config.json");
  EXPECT_TRUE(load_quiet(dir).do_lower_case);  // BertTokenizer's default
}

TEST_F(CheckpointTest, BadShardIndex) {
  const fs::path dir = copy_fixture("tiny_sharded");
  const std::string index = read_file(dir / "model.safetensors.index.json");
  fs::rename(dir / "model-00002-of-00002.safetensors", dir / "moved.safetensors");
  expect_load_error(dir, ErrorCode::IO, (dir / "model.safetensors.index.json").string(),
                    {"model-00002-of-00002.safetensors"});
  fs::rename(dir / "moved.safetensors", dir / "model-00002-of-00002.safetensors");

  json j = json::parse(index);
  j["weight_map"]["bert.pooler.dense.bias"] = "model-00001-of-00002.safetensors";  // it lives in shard 2
  write_file_atomic(dir / "model.safetensors.index.json", j.dump());
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors.index.json").string(),
                    {"bert.pooler.dense.bias", "model-00001-of-00002.safetensors"});
  j = json::parse(index);
  j["weight_map"]["bert.pooler.dense.bias"] = "../tiny/model.safetensors";
  write_file_atomic(dir / "model.safetensors.index.json", j.dump());
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors.index.json").string(),
                    {"not a file name"});
  write_file_atomic(dir / "model.safetensors.index.json", "{\"weight_map\": 3}");
  expect_load_error(dir, ErrorCode::INVALID_ARGUMENT, (dir / "model.safetensors.index.json").string(),
                    {"weight_map"});
}

// Round trip of a real checkpoint: all-MiniLM-L6-v2 (BertModel names, pooler, no classifier).
TEST(CheckpointMiniLm, SaveAndReloadBitForBit) {
  const char* env = std::getenv("NLPF_MINILM_DIR");
  if (env == nullptr || *env == '\0') GTEST_SKIP() << "NLPF_MINILM_DIR not set";
  const fs::path source = env;
  std::string notices;
  const Checkpoint ckpt = load_quiet(source, &notices);
  EXPECT_EQ(ckpt.initialized, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  EXPECT_EQ(ckpt.vocab.size(), 30522);
  EXPECT_TRUE(ckpt.do_lower_case);
  const SafetensorsFile original = read_safetensors(source / "model.safetensors");
  for (const auto& [stored, tensor] : original.tensors) {
    const std::optional<std::string> name = canonical_parameter_name(stored);
    if (!name) continue;
    EXPECT_TRUE(same_bits(ckpt.tensor(*name), tensor)) << stored << " (pooler kept as stored)";
  }
  // The head is initialised in the checkpoint's dtype (F32, or F16 for the GPU machine's carried copy).
  const Tensor w = ckpt.tensor("classifier.weight").to(DType::F32);
  double sum = 0, sum_sq = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    sum += w.data<float>()[i];
    sum_sq += w.data<float>()[i] * static_cast<double>(w.data<float>()[i]);
  }
  const double mean = sum / w.numel(), stddev = std::sqrt(sum_sq / w.numel() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.003);     // 768 samples of normal(0, 0.02): standard error 0.0007
  EXPECT_NEAR(stddev, 0.02, 0.002);  // standard error about 0.0005
  const Tensor bias = ckpt.tensor("classifier.bias").to(DType::F32);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(bias.data<float>()[i], 0.0f);

  TempDir temp;
  CheckpointSaveOptions keep_dtype;
  keep_dtype.dtype = std::nullopt;  // bit-for-bit round trip whatever the stored dtype
  save_checkpoint(temp.path() / "out", ckpt.config, ckpt.tensors, ckpt.vocab, ckpt.do_lower_case, keep_dtype);
  const Checkpoint back = load_quiet(temp.path() / "out");
  EXPECT_TRUE(back.initialized.empty());
  ASSERT_EQ(back.tensors.size(), ckpt.tensors.size());
  for (const auto& [name, tensor] : ckpt.tensors) EXPECT_TRUE(same_bits(back.tensor(name), tensor)) << name;
  EXPECT_EQ(read_file(temp.path() / "out/vocab.txt"), read_file(source / "vocab.txt"));
}

}  // namespace
}  // namespace nlpf
