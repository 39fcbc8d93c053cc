// Hugging Face BERT checkpoint directories: config.json, model.safetensors (or a sharded
// model.safetensors.index.json), vocab.txt, tokenizer_config.json. Tensors are keyed by their canonical
// BertForSequenceClassification names ("bert.encoder.layer.3.attention.self.query.weight",
// "classifier.weight"); BertModel names without "bert.", TF-style LayerNorm.gamma/beta and pre-training
// heads (cls.*) are mapped or ignored as transformers does when it loads BertForSequenceClassification.
#pragma once

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/bert_config.h"
#include "text/vocab.h"

namespace nlpf {

struct ParameterSpec {
  std::string name;  // canonical name
  Shape shape;
};

// Every parameter of BertForSequenceClassification for `config`, in HF's module order: embeddings,
// layers 0..L-1, pooler, classifier. Weights of nn.Linear are [out, in] as stored by PyTorch.
std::vector<ParameterSpec> bert_parameter_specs(const BertConfig& config);

// Canonical name of a stored tensor name, or nullopt for tensors a classifier never uses (cls.* heads,
// the position_ids / token_type_ids buffers). Unknown names map too (they end up reported as extra).
std::optional<std::string> canonical_parameter_name(const std::string& stored_name);

struct Checkpoint {
  BertConfig config;
  std::filesystem::path directory;
  std::map<std::string, Tensor> tensors;  // canonical name -> tensor, in its stored float dtype
  Vocab vocab;
  bool do_lower_case = true;
  std::vector<std::string> initialized;  // canonical names absent from the files and initialised here

  // The tensor of a canonical name; Error(INTERNAL) when absent (load_checkpoint guarantees every spec).
  const Tensor& tensor(const std::string& name) const;
};

struct CheckpointLoadOptions {
  // Seed of the Philox streams that initialise a missing pooler / classifier, as HF's _init_weights does:
  // weights normal(0, initializer_range) (pooler weight at stream offset 0, classifier weight at offset
  // kClassifierInitOffset), biases 0.
  uint64_t init_seed = 42;
  std::ostream* notices = nullptr;  // where notices go; nullptr means std::cerr
  bool quiet = false;               // no notices at all
};

constexpr uint64_t kClassifierInitOffset = uint64_t{1} << 40;

// Loads and checks a checkpoint directory. Errors: IO for a missing directory or file (naming it);
// UNSUPPORTED for a pytorch_model.bin-only directory or an unsupported config; INVALID_ARGUMENT naming
// the file and tensor for a missing tensor, a non-float dtype or a shape that disagrees with config.json
// (expected vs got). Extra tensors and initialised pooler/classifier tensors are reported as notices.
Checkpoint load_checkpoint(const std::filesystem::path& dir, const CheckpointLoadOptions& options = {});

struct CheckpointSaveOptions {
  // dtype of model.safetensors: F32 (default), F16 or BF16; nullopt keeps each tensor's dtype.
  std::optional<DType> dtype = DType::F32;
};

// Writes a BertForSequenceClassification directory that transformers loads: config.json,
// model.safetensors ("bert." names + classifier.*, __metadata__ {"format": "pt"}), vocab.txt and
// tokenizer_config.json. Built under a temporary name and renamed at the end (an interrupted save never
// looks complete); refuses to overwrite an existing `dir`. `tensors` must hold exactly the canonical
// parameters of `config` with matching shapes.
void save_checkpoint(const std::filesystem::path& dir, const BertConfig& config,
                     const std::map<std::string, Tensor>& tensors, const Vocab& vocab, bool do_lower_case,
                     const CheckpointSaveOptions& options = {});

}  // namespace nlpf
