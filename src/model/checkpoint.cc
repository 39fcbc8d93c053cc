// Checkpoint directories: name mapping, shard index, validation against config.json, HF-style
// initialisation of a missing pooler/classifier, and staged saving in BertForSequenceClassification layout.
#include "model/checkpoint.h"

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/random.h"
#include "model/safetensors.h"

namespace nlpf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kShardIndex = "model.safetensors.index.json";

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.rfind(prefix, 0) == 0;
}
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join_names(const std::vector<std::string>& names, size_t limit = 8) {
  std::ostringstream out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out << (i ? ", " : "") << names[i];
  if (names.size() > limit) out << " and " << names.size() - limit << " more";
  return out.str();
}

// A tensor read from a file, with where it came from for error messages.
struct LoadedTensor {
  Tensor tensor;
  std::string file;
  std::string stored_name;
};

// Reads the tensors of one safetensors file whose canonical names are expected (and, for a shard, that
// the index assigns to it); other stored names (except ignored buffers and heads) go to `unused`.
// Returns every stored name of the file.
std::set<std::string> read_tensor_file(const fs::path& path, const std::set<std::string>& expected,
                                       const std::set<std::string>* assigned,
                                       std::map<std::string, LoadedTensor>& loaded,
                                       std::vector<std::string>& unused) {
  std::set<std::string> stored_names;
  std::map<std::string, std::string> canonical_of;  // stored -> canonical, for the selected ones
  SafetensorsFile file = read_safetensors(path, [&](const std::string& stored) {
    stored_names.insert(stored);
    const std::optional<std::string> canonical = canonical_parameter_name(stored);
    if (!canonical) return false;
    if (assigned != nullptr && !assigned->contains(stored)) {
      // In the shard but the index sends it elsewhere or nowhere: HF never reads it either.
      unused.push_back(path.filename().string() + ":" + stored);
      return false;
    }
    if (!expected.contains(*canonical)) {
      unused.push_back(stored);
      return false;
    }
    canonical_of[stored] = *canonical;
    return true;
  });
  for (auto& [stored, tensor] : file.tensors) {
    const std::string& canonical = canonical_of.at(stored);
    const auto it = loaded.find(canonical);
    NLPF_CHECK(it == loaded.end(), ErrorCode::INVALID_ARGUMENT, path.string(), ": tensors \"", stored,
               "\" and \"", it->second.stored_name, "\" (in ", it->second.file, ") both load as ", canonical);
    loaded.emplace(canonical, LoadedTensor{std::move(tensor), path.string(), stored});
  }
  return stored_names;
}

// Reads the shard index {"weight_map": {name: shard_file}} and every shard it names.
void read_sharded(const fs::path& dir, const std::set<std::string>& expected,
                  std::map<std::string, LoadedTensor>& loaded, std::vector<std::string>& unused) {
  const fs::path index_path = dir / kShardIndex;
  const std::string source = index_path.string();
  json index;
  try {
    index = json::parse(read_file(index_path));
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, source, ": not valid JSON: ", e.what());
  }
  NLPF_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
             ErrorCode::INVALID_ARGUMENT, source, ": expected an object with a \"weight_map\" object");
  std::map<std::string, std::set<std::string>> by_shard;  // shard file -> stored names
  for (const auto& [stored, shard] : index["weight_map"].items()) {
    NLPF_CHECK(shard.is_string(), ErrorCode::INVALID_ARGUMENT, source, ": weight_map[\"", stored,
               "\"] must be a file name");
    const std::string shard_name = shard.get<std::string>();
    // Shards live beside the index; a path elsewhere is refused rather than followed.
    NLPF_CHECK(!shard_name.empty() && shard_name.find('/') == std::string::npos && shard_name != "." &&
                   shard_name != "..",
               ErrorCode::INVALID_ARGUMENT, source, ": weight_map[\"", stored, "\"] = \"", shard_name,
               "\" is not a file name in this directory");
    by_shard[shard_name].insert(stored);
  }
  for (const auto& [shard_name, assigned] : by_shard) {
    const fs::path shard_path = dir / shard_name;
    std::error_code ec;
    NLPF_CHECK(fs::is_regular_file(shard_path, ec), ErrorCode::IO, source, ": shard ", shard_name,
               " is missing (", shard_path.string(), ")");
    const std::set<std::string> present = read_tensor_file(shard_path, expected, &assigned, loaded, unused);
    for (const std::string& stored : assigned) {
      NLPF_CHECK(present.contains(stored), ErrorCode::INVALID_ARGUMENT, source, ": tensor \"", stored,
                 "\" is assigned to shard ", shard_name, " but ", shard_path.string(), " does not hold it");
    }
  }
}

bool read_do_lower_case(const fs::path& dir) {
  const fs::path path = dir / "tokenizer_config.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return true;  // BertTokenizer's default
  json config;
  try {
    config = json::parse(read_file(path));
  } catch (const json::exception& e) {
    NLPF_THROW(ErrorCode::INVALID_ARGUMENT, path.string(), ": not valid JSON: ", e.what());
  }
  NLPF_CHECK(config.is_object(), ErrorCode::INVALID_ARGUMENT, path.string(), ": expected a JSON object");
  if (!config.contains("do_lower_case") || config["do_lower_case"].is_null()) return true;
  NLPF_CHECK(config["do_lower_case"].is_boolean(), ErrorCode::INVALID_ARGUMENT, path.string(),
             ": \"do_lower_case\" must be true or false");
  return config["do_lower_case"].get<bool>();
}

const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F16:
      return "float16";
    case DType::BF16:
      return "bfloat16";
    default:
      return "float32";
  }
}

}  // namespace

std::vector<ParameterSpec> bert_parameter_specs(const BertConfig& config) {
  const int64_t H = config.hidden_size, I = config.intermediate_size;
  std::vector<ParameterSpec> specs = {
      {"bert.embeddings.word_embeddings.weight", {config.vocab_size, H}},
      {"bert.embeddings.position_embeddings.weight", {config.max_position_embeddings, H}},
      {"bert.embeddings.token_type_embeddings.weight", {config.type_vocab_size, H}},
      {"bert.embeddings.LayerNorm.weight", {H}},
      {"bert.embeddings.LayerNorm.bias", {H}},
  };
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    const std::string p = "bert.encoder.layer." + std::to_string(layer) + ".";
    for (const char* projection : {"query", "key", "value"}) {
      specs.push_back({p + "attention.self." + projection + ".weight", {H, H}});
      specs.push_back({p + "attention.self." + projection + ".bias", {H}});
    }
    specs.push_back({p + "attention.output.dense.weight", {H, H}});
    specs.push_back({p + "attention.output.dense.bias", {H}});
    specs.push_back({p + "attention.output.LayerNorm.weight", {H}});
    specs.push_back({p + "attention.output.LayerNorm.bias", {H}});
    specs.push_back({p + "intermediate.dense.weight", {I, H}});
    specs.push_back({p + "intermediate.dense.bias", {I}});
    specs.push_back({p + "output.dense.weight", {H, I}});
    specs.push_back({p + "output.dense.bias", {H}});
    specs.push_back({p + "output.LayerNorm.weight", {H}});
    specs.push_back({p + "output.LayerNorm.bias", {H}});
  }
  specs.push_back({"bert.pooler.dense.weight", {H, H}});
  specs.push_back({"bert.pooler.dense.bias", {H}});
  specs.push_back({"classifier.weight", {config.num_labels(), H}});
  specs.push_back({"classifier.bias", {config.num_labels()}});
  return specs;
}

std::optional<std::string> canonical_parameter_name(const std::string& stored_name) {
  if (starts_with(stored_name, "cls.")) return std::nullopt;  // pre-training heads (MLM, NSP)
  std::string name = starts_with(stored_name, "bert.") ? stored_name.substr(5) : stored_name;
  // Buffers, not parameters: HF recomputes them (and newer versions do not save them).
  if (name == "embeddings.position_ids" || name == "embeddings.token_type_ids") return std::nullopt;
  // TF-era names, renamed by transformers on load.
  if (ends_with(name, ".gamma")) name = name.substr(0, name.size() - 6) + ".weight";
  if (ends_with(name, ".beta")) name = name.substr(0, name.size() - 5) + ".bias";
  if (starts_with(name, "classifier.")) return name;
  return "bert." + name;
}

const Tensor& Checkpoint::tensor(const std::string& name) const {
  const auto it = tensors.find(name);
  NLPF_CHECK(it != tensors.end(), ErrorCode::INTERNAL, directory.string(), ": no tensor ", name);
  return it->second;
}

Checkpoint load_checkpoint(const fs::path& dir, const CheckpointLoadOptions& options) {
  std::error_code ec;
  NLPF_CHECK(fs::is_directory(dir, ec), ErrorCode::IO, dir.string(), ": not a model directory (",
             fs::exists(dir, ec) ? "not a directory" : "no such directory", ")");
  Checkpoint ckpt;
  ckpt.directory = dir;
  ckpt.config = BertConfig::load(dir / "config.json");
  const std::vector<ParameterSpec> specs = bert_parameter_specs(ckpt.config);
  std::set<std::string> expected;
  for (const ParameterSpec& spec : specs) expected.insert(spec.name);

  std::map<std::string, LoadedTensor> loaded;
  std::vector<std::string> unused;
  std::string weights_source;
  if (fs::exists(dir / kSingleFile, ec)) {
    weights_source = (dir / kSingleFile).string();
    read_tensor_file(dir / kSingleFile, expected, nullptr, loaded, unused);
  } else if (fs::exists(dir / kShardIndex, ec)) {
    weights_source = (dir / kShardIndex).string();
    read_sharded(dir, expected, loaded, unused);
  } else {
    for (const char* other : {"pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5"}) {
      NLPF_CHECK(!fs::exists(dir / other, ec), ErrorCode::UNSUPPORTED, (dir / other).string(),
                 ": only safetensors weights are read; convert it to model.safetensors first (e.g. "
                 "transformers' from_pretrained(dir).save_pretrained(out, safe_serialization=True))");
    }
    NLPF_THROW(ErrorCode::IO, dir.string(), ": no ", kSingleFile, " or ", kShardIndex);
  }

  std::vector<std::string> missing;
  for (const ParameterSpec& spec : specs) {
    const auto it = loaded.find(spec.name);
    if (it == loaded.end()) {
      const bool head = starts_with(spec.name, "bert.pooler.") || starts_with(spec.name, "classifier.");
      if (!head) missing.push_back(spec.name);
      continue;
    }
    const LoadedTensor& t = it->second;
    NLPF_CHECK(dtype_is_float(t.tensor.dtype()), ErrorCode::INVALID_ARGUMENT, t.file, ": tensor \"",
               t.stored_name, "\" has dtype ", dtype_safetensors_name(t.tensor.dtype()),
               "; expected a float dtype (F32, F16 or BF16)");
    NLPF_CHECK(t.tensor.shape() == spec.shape, ErrorCode::INVALID_ARGUMENT, t.file, ": tensor \"",
               t.stored_name, "\" has shape ", shape_string(t.tensor.shape()), " but config.json implies ",
               shape_string(spec.shape));
  }
  NLPF_CHECK(missing.empty(), ErrorCode::INVALID_ARGUMENT, weights_source, ": missing ", missing.size(),
             " tensor(s) of the ", ckpt.config.num_hidden_layers,
             "-layer model in config.json: ", join_names(missing));
  for (auto& [name, t] : loaded) ckpt.tensors.emplace(name, std::move(t.tensor));

  // HF's BertPreTrainedModel._init_weights for what a BertModel checkpoint lacks: Linear weights
  // normal(0, initializer_range), biases zero, in the dtype of the rest of the model.
  const DType dtype = ckpt.tensors.at("bert.embeddings.word_embeddings.weight").dtype();
  for (const ParameterSpec& spec : specs) {
    if (ckpt.tensors.contains(spec.name)) continue;
    Tensor t = Tensor::zeros(dtype, spec.shape);
    if (ends_with(spec.name, ".weight")) {
      const uint64_t offset = starts_with(spec.name, "classifier.") ? kClassifierInitOffset : 0;
      fill_normal(t, 0.0f, static_cast<float>(ckpt.config.initializer_range), options.init_seed, offset);
    }
    ckpt.tensors.emplace(spec.name, std::move(t));
    ckpt.initialized.push_back(spec.name);
  }

  const fs::path vocab_path = dir / "vocab.txt";
  ckpt.vocab = Vocab::load(vocab_path);
  NLPF_CHECK(ckpt.vocab.size() <= ckpt.config.vocab_size, ErrorCode::INVALID_ARGUMENT, vocab_path.string(),
             ": ", ckpt.vocab.size(), " tokens but config.json has vocab_size ", ckpt.config.vocab_size);
  ckpt.do_lower_case = read_do_lower_case(dir);

  if (!options.quiet) {
    std::ostream& out = options.notices != nullptr ? *options.notices : std::cerr;
    if (!unused.empty()) {
      out << "nlpf: " << weights_source << ": " << unused.size()
          << " tensor(s) not used by BertForSequenceClassification: " << join_names(unused) << "\n";
    }
    if (!ckpt.initialized.empty()) {
      out << "nlpf: " << dir.string() << ": initialised " << join_names(ckpt.initialized)
          << " (not in the checkpoint; weights normal(0, " << ckpt.config.initializer_range
          << "), biases 0, seed " << options.init_seed << ")\n";
    }
  }
  return ckpt;
}

void save_checkpoint(const fs::path& dir, const BertConfig& config,
                     const std::map<std::string, Tensor>& tensors, const Vocab& vocab, bool do_lower_case,
                     const CheckpointSaveOptions& options) {
  const std::string where = dir.string();
  config.validate(where + " (config)");
  const std::vector<ParameterSpec> specs = bert_parameter_specs(config);
  NLPF_CHECK(!options.dtype || dtype_is_float(*options.dtype), ErrorCode::INVALID_ARGUMENT, where,
             ": checkpoint dtype must be F32, F16 or BF16");
  std::set<std::string> expected;
  std::vector<std::pair<std::string, Tensor>> to_write;
  std::set<DType> dtypes;
  for (const ParameterSpec& spec : specs) {
    expected.insert(spec.name);
    const auto it = tensors.find(spec.name);
    NLPF_CHECK(it != tensors.end(), ErrorCode::INVALID_ARGUMENT, where, ": cannot save, tensor ", spec.name,
               " is missing");
    const Tensor& t = it->second;
    NLPF_CHECK(dtype_is_float(t.dtype()) && t.shape() == spec.shape, ErrorCode::INVALID_ARGUMENT, where,
               ": cannot save tensor ", spec.name, ": expected a float tensor of shape ",
               shape_string(spec.shape), ", got ", dtype_name(t.dtype()), " ", shape_string(t.shape()));
    Tensor out = (!options.dtype || *options.dtype == t.dtype()) ? t : t.to(*options.dtype);
    dtypes.insert(out.dtype());
    to_write.emplace_back(spec.name, std::move(out));
  }
  for (const auto& [name, tensor] : tensors) {
    (void)tensor;
    NLPF_CHECK(expected.contains(name), ErrorCode::INVALID_ARGUMENT, where, ": cannot save tensor ", name,
               ": not a parameter of BertForSequenceClassification");
  }
  NLPF_CHECK(vocab.size() <= config.vocab_size, ErrorCode::INVALID_ARGUMENT, where, ": vocabulary of ",
             vocab.size(), " tokens exceeds vocab_size ", config.vocab_size);

  StagedDirectory staged(dir);
  json config_json = config.to_json();
  if (dtypes.size() == 1) config_json["dtype"] = torch_dtype_name(*dtypes.begin());
  write_file_atomic(staged.path() / "config.json", config_json.dump(2) + "\n");
  write_safetensors(staged.path() / kSingleFile, to_write, {{"format", "pt"}});
  write_file_atomic(staged.path() / "vocab.txt", vocab.serialize());
  const json tokenizer_config = {
      {"do_lower_case", do_lower_case},
      {"model_max_length", config.max_position_embeddings},
      {"tokenizer_class", "BertTokenizer"},
  };
  write_file_atomic(staged.path() / "tokenizer_config.json", tokenizer_config.dump(2) + "\n");
  staged.commit();
}

}  // namespace nlpf
