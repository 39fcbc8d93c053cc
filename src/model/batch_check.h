// The checks of a batch that a kernel cannot make (it cannot throw): ids inside the embedding tables, labels
// inside the classes. The CUDA engines run them on the host before a batch is uploaded; the CPU kernels check
// for themselves.
#pragma once

#include "model/bert_config.h"
#include "text/batching.h"

namespace nlpf {

// INVALID_ARGUMENT naming the example (`what` and its index: batch.example_index when filled, else its row),
// the value and the array position, e.g. "evaluation example 7: token id 40 is outside the model's vocabulary
// of 40 (input_ids[12] = 40)". Labels may be kNoLabel (a split without labels).
void check_batch_ranges(const Batch& batch, const BertConfig& config, const char* what);

}  // namespace nlpf
