// Prints nlpf's logits for the first N examples of a dataset file, one JSON object per line
// ({"index", "input_ids", "logits"}), so tools/check_hf_logits.py can compare them with Hugging Face's
// logits for the same model directory. EVAL mode, fp32, batches padded to the longest example.
// Usage: print_logits MODEL_DIR DATA_FILE [N=64] [MAX_LENGTH=128]
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/bert_model.h"
#include "model/checkpoint.h"
#include "text/batching.h"
#include "text/dataset.h"
#include "text/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: print_logits MODEL_DIR DATA_FILE [N=64] [MAX_LENGTH=128]\n");
    return 2;
  }
  try {
    const std::string model_dir = argv[1];
    const int64_t n = argc > 3 ? std::stoll(argv[3]) : 64;
    const int64_t max_length = argc > 4 ? std::stoll(argv[4]) : 128;
    nlpf::CheckpointLoadOptions load;
    load.quiet = true;
    const nlpf::Checkpoint checkpoint = nlpf::load_checkpoint(model_dir, load);
    nlpf::BertForSequenceClassification model(checkpoint);
    const nlpf::WordPieceTokenizer tokenizer = nlpf::WordPieceTokenizer::from_model_dir(model_dir);
    nlpf::Dataset data = nlpf::read_dataset(argv[2]);
    if (data.size() > n) data.examples.resize(static_cast<size_t>(n));
    const nlpf::TokenizedDataset tokens = nlpf::tokenize_dataset(data, tokenizer, max_length, false);
    const std::vector<nlpf::Batch> batches = nlpf::make_batches(
        tokens, 16, nlpf::PaddingMode::LONGEST, max_length, nlpf::sequential_order(tokens.size()));
    for (const nlpf::Batch& batch : batches) {
      const nlpf::ModelOutput out = model.forward(batch, nlpf::ForwardMode::EVAL);
      const int64_t num_labels = out.logits.dim(1);
      for (int64_t b = 0; b < batch.B; ++b) {
        const int64_t index = batch.example_index[static_cast<size_t>(b)];
        nlohmann::json row;
        row["index"] = index;
        row["input_ids"] = tokens.encodings[static_cast<size_t>(index)].input_ids;
        std::vector<float> logits(out.logits.data<float>() + b * num_labels,
                                  out.logits.data<float>() + (b + 1) * num_labels);
        row["logits"] = logits;
        std::printf("%s\n", row.dump().c_str());
      }
    }
  } catch (const nlpf::Error& e) {
    std::fprintf(stderr, "print_logits: %s\n", e.what());
    return 1;
  }
  return 0;
}
