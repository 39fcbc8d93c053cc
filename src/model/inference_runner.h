// InferenceRunner: the evaluation set on the device and the pass over it that the GPU measurements time (the
// GPU's counterpart of evaluate_classifier). The set is tokenised, cut into batches in evaluation_order (file
// order, or length order for BUCKETED), validated by batching on the host and uploaded once; a pass then does
// no host work per batch but a few launches: the batch's inputs are copied into fixed device buffers and the
// CUDA graph of its shape (B, T) is replayed (captured on first use, so a warm-up pass pays for it), its
// predictions gathered on the device at the batch's position in the pass order, and the correct count
// accumulated there. The host waits once, at the end of the pass, to read predictions and count, and puts the
// predictions back in file order through the pass order (an index map kept on the host: O(examples) once per
// pass, no kernel and no host work per batch).
// LONGEST and BUCKETED padding round each batch's length up to a multiple of `length_multiple`, so a pass
// needs a handful of shapes (and graphs); the padding is masked, so predictions do not change.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "backend/context.h"
#include "measure/batch_timer.h"
#include "model/bert_inference.h"
#include "text/batching.h"
#include "train/trainer.h"

namespace nlpf {

struct InferenceRunnerOptions {
  int64_t batch_size = 64;
  PaddingMode padding = PaddingMode::LONGEST;
  int64_t length_multiple = 8;
  bool use_graphs = true;  // false: every batch runs eagerly (the graph-equals-eager test)
  // How the engine's GEMMs pick their algorithm (backend/context.h). AUTOTUNE: each (batch, length) shape
  // runs once eagerly before its graph is captured, which times cuBLASLt's candidates for its GEMMs.
  GemmSelection gemm_selection = GemmSelection::AUTOTUNE;
};

// The longest batch a runner with these options makes of `data` (max_length when padding to it; else the
// longest example rounded up to length_multiple): what to plan the engine's workspaces for, so that memory
// follows the data as PyTorch's allocator does rather than the truncation length.
int64_t planned_sequence_length(const TokenizedDataset& data, const InferenceRunnerOptions& options);

class InferenceRunner {
 public:
  // `engine` must be planned for at least batch_size x data.max_length. Errors: INVALID_ARGUMENT from
  // batching (an id outside the vocabulary, a token type outside type_vocab_size, an empty set).
  InferenceRunner(BertInference& engine, const TokenizedDataset& data, const InferenceRunnerOptions& options);

  // One pass over the set; per-batch latencies from `timer` (CUDA events on the engine's stream) when given.
  // predictions are in file order; accuracy over labelled examples (from the device's correct count, checked
  // against the predictions: a mismatch is INTERNAL).
  EvaluationResult run_pass(BatchTimer* timer = nullptr);

  size_t batches() const { return batches_.size(); }
  // The distinct (B, T) of the batches: the graphs a pass replays.
  std::vector<std::pair<int64_t, int64_t>> shapes() const;

 private:
  struct DeviceBatch {
    int64_t B = 0, T = 0, first_position = 0;                  // its first example's position in order_
    Tensor input_ids, token_type_ids, attention_mask, labels;  // views of the uploaded set
  };
  void run_batch(const DeviceBatch& batch);

  BertInference& engine_;
  ExecutionContext& ctx_;
  InferenceRunnerOptions options_;
  std::vector<DeviceBatch> batches_;
  std::vector<int32_t> labels_;                         // host copy, file order
  std::vector<int64_t> order_;                          // the pass order: position p holds example order_[p]
  Tensor set_ids_, set_types_, set_mask_, set_labels_;  // the uploaded set, batch after batch
  // Fixed buffers; predictions_ is in pass order.
  Tensor input_ids_, token_type_ids_, attention_mask_, labels_in_, correct_, predictions_;
  struct Graph {
    std::unique_ptr<CapturedWork> work;
    Tensor predictions;  // the engine's output view the graph writes
  };
  std::map<std::pair<int64_t, int64_t>, Graph> graphs_;
};

}  // namespace nlpf
