// check_batch_ranges: one pass over ids, token types and labels.
#include "model/batch_check.h"

#include "core/error.h"

namespace nlpf {

void check_batch_ranges(const Batch& batch, const BertConfig& config, const char* what) {
  const auto example = [&](size_t row) {
    return row < batch.example_index.size() ? batch.example_index[row] : static_cast<int64_t>(row);
  };
  const auto T = static_cast<size_t>(batch.T);
  for (size_t i = 0; i < batch.input_ids.size(); ++i) {
    const int32_t id = batch.input_ids[i], type = batch.token_type_ids[i];
    NLPF_CHECK(id >= 0 && id < config.vocab_size, ErrorCode::INVALID_ARGUMENT, what, " ", example(i / T),
               ": token id ", id, " is outside the model's vocabulary of ", config.vocab_size, " (input_ids[",
               i, "] = ", id, ")");
    NLPF_CHECK(type >= 0 && type < config.type_vocab_size, ErrorCode::INVALID_ARGUMENT, what, " ",
               example(i / T), ": token type ", type, " is outside type_vocab_size ", config.type_vocab_size,
               " (token_type_ids[", i, "] = ", type, ")");
  }
  for (size_t b = 0; b < batch.labels.size(); ++b) {
    const int32_t label = batch.labels[b];
    NLPF_CHECK(label == kNoLabel || (label >= 0 && label < config.num_labels()), ErrorCode::INVALID_ARGUMENT,
               what, " ", example(b), ": label ", label, " is outside the model's ", config.num_labels(),
               " labels (labels[", b, "] = ", label, ")");
  }
}

}  // namespace nlpf
