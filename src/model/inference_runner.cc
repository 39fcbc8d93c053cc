// InferenceRunner (see inference_runner.h).
#include "model/inference_runner.h"

#include <algorithm>
#include <span>

#include "core/error.h"
#include "model/batch_check.h"

namespace nlpf {
namespace {

// The batch re-padded to length T (>= its own): pad id, token type 0, mask 0 on the new columns.
Batch padded_to(const Batch& batch, int64_t T, int32_t pad_id) {
  if (T == batch.T) return batch;
  Batch out = batch;
  out.T = T;
  out.input_ids.assign(static_cast<size_t>(batch.B * T), pad_id);
  out.token_type_ids.assign(static_cast<size_t>(batch.B * T), 0);
  out.attention_mask.assign(static_cast<size_t>(batch.B * T), 0);
  for (int64_t b = 0; b < batch.B; ++b) {
    for (int64_t t = 0; t < batch.T; ++t) {
      const size_t from = static_cast<size_t>(b * batch.T + t), to = static_cast<size_t>(b * T + t);
      out.input_ids[to] = batch.input_ids[from];
      out.token_type_ids[to] = batch.token_type_ids[from];
      out.attention_mask[to] = batch.attention_mask[from];
    }
  }
  return out;
}

Tensor host_ints(const std::vector<int32_t>& values) {
  Tensor t = Tensor::empty(DType::I32, {static_cast<int64_t>(values.size())});
  std::copy(values.begin(), values.end(), t.data<int32_t>());
  return t;
}

}  // namespace

int64_t planned_sequence_length(const TokenizedDataset& data, const InferenceRunnerOptions& options) {
  if (options.padding == PaddingMode::MAX_LENGTH) return data.max_length;
  int64_t longest = 1;
  for (const Encoding& e : data.encodings) longest = std::max(longest, e.size());
  const int64_t rounded =
      (longest + options.length_multiple - 1) / options.length_multiple * options.length_multiple;
  return std::min(rounded, data.max_length);
}

InferenceRunner::InferenceRunner(BertInference& engine, const TokenizedDataset& data,
                                 const InferenceRunnerOptions& options)
    : engine_(engine),
      ctx_(engine.context()),
      options_(options),
      labels_(data.labels),
      order_(evaluation_order(data, options.batch_size, options.padding)) {
  NLPF_CHECK(data.size() > 0, ErrorCode::INVALID_ARGUMENT, "the evaluation set is empty");
  ctx_.set_gemm_selection(options.gemm_selection);
  NLPF_CHECK(options.batch_size > 0 && options.batch_size <= engine.max_batch_size(),
             ErrorCode::INVALID_ARGUMENT, "evaluation batch size ", options.batch_size,
             " (the engine is planned for 1..", engine.max_batch_size(), ")");
  NLPF_CHECK(options.length_multiple > 0, ErrorCode::INVALID_ARGUMENT, "length multiple must be positive");
  const int64_t longest = planned_sequence_length(data, options);
  NLPF_CHECK(longest <= engine.max_sequence_length(), ErrorCode::INVALID_ARGUMENT,
             "evaluation batches of length ", longest, " exceed the engine's planned ",
             engine.max_sequence_length());
  std::vector<int32_t> ids, types, mask, labels;
  for (int64_t begin = 0; begin < data.size(); begin += options.batch_size) {
    const int64_t end = std::min(data.size(), begin + options.batch_size);
    Batch batch = make_batch(data, std::span<const int64_t>(order_.data() + begin, order_.data() + end),
                             options.padding, data.max_length);
    if (options.padding != PaddingMode::MAX_LENGTH) {
      const int64_t rounded =
          (batch.T + options.length_multiple - 1) / options.length_multiple * options.length_multiple;
      batch = padded_to(batch, std::min(rounded, data.max_length), data.pad_id);
    }
    check_batch_ranges(batch, engine.config(), "evaluation example");
    DeviceBatch device;
    device.B = batch.B;
    device.T = batch.T;
    device.first_position = begin;
    batches_.push_back(device);
    ids.insert(ids.end(), batch.input_ids.begin(), batch.input_ids.end());
    types.insert(types.end(), batch.token_type_ids.begin(), batch.token_type_ids.end());
    mask.insert(mask.end(), batch.attention_mask.begin(), batch.attention_mask.end());
    labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
  }
  set_ids_ = to_device(ctx_, host_ints(ids));
  set_types_ = to_device(ctx_, host_ints(types));
  set_mask_ = to_device(ctx_, host_ints(mask));
  set_labels_ = to_device(ctx_, host_ints(labels));
  size_t token_offset = 0;
  for (DeviceBatch& batch : batches_) {
    const size_t bytes = token_offset * sizeof(int32_t);
    batch.input_ids = set_ids_.view({batch.B, batch.T}, bytes);
    batch.token_type_ids = set_types_.view({batch.B, batch.T}, bytes);
    batch.attention_mask = set_mask_.view({batch.B, batch.T}, bytes);
    batch.labels = set_labels_.view({batch.B}, static_cast<size_t>(batch.first_position) * sizeof(int32_t));
    token_offset += static_cast<size_t>(batch.B * batch.T);
  }
  const int64_t tokens = options.batch_size * data.max_length;
  input_ids_ = empty_tensor(ctx_, DType::I32, {tokens});
  token_type_ids_ = empty_tensor(ctx_, DType::I32, {tokens});
  attention_mask_ = empty_tensor(ctx_, DType::I32, {tokens});
  labels_in_ = empty_tensor(ctx_, DType::I32, {options.batch_size});
  correct_ = empty_tensor(ctx_, DType::I32, {1});
  predictions_ = empty_tensor(ctx_, DType::I32, {data.size()});
}

std::vector<std::pair<int64_t, int64_t>> InferenceRunner::shapes() const {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const DeviceBatch& b : batches_) {
    if (std::find(out.begin(), out.end(), std::make_pair(b.B, b.T)) == out.end()) out.emplace_back(b.B, b.T);
  }
  return out;
}

void InferenceRunner::run_batch(const DeviceBatch& batch) {
  // Into the fixed buffers the graphs were captured with (device to device, queued, no wait).
  Tensor ids = input_ids_.view({batch.B, batch.T}), types = token_type_ids_.view({batch.B, batch.T}),
         mask = attention_mask_.view({batch.B, batch.T}), labels = labels_in_.view({batch.B});
  copy_tensor(ctx_, ids, batch.input_ids);
  copy_tensor(ctx_, types, batch.token_type_ids);
  copy_tensor(ctx_, mask, batch.attention_mask);
  copy_tensor(ctx_, labels, batch.labels);
  Tensor predictions;
  if (options_.use_graphs) {
    Graph& graph = graphs_[{batch.B, batch.T}];
    if (!graph.work) {
      // The shape's first forward runs eagerly (no labels: it counts nothing), so its GEMM plans are made,
      // and autotuned, outside the capture.
      engine_.forward(ids, types, mask, nullptr, nullptr);
      graph.work = ctx_.capture(
          [&] { graph.predictions = engine_.forward(ids, types, mask, &labels, &correct_).predictions; });
    }
    graph.work->replay();
    predictions = graph.predictions;
  } else {
    predictions = engine_.forward(ids, types, mask, &labels, &correct_).predictions;
  }
  Tensor gathered = predictions_.view({batch.B}, static_cast<size_t>(batch.first_position) * sizeof(int32_t));
  copy_tensor(ctx_, gathered, predictions);
}

EvaluationResult InferenceRunner::run_pass(BatchTimer* timer) {
  fill_zero(ctx_, correct_);
  for (const DeviceBatch& batch : batches_) {
    if (timer) timer->start();
    run_batch(batch);
    if (timer) timer->stop();
  }
  EvaluationResult result;
  const Tensor predictions = to_host(ctx_, predictions_);  // waits for the pass
  const int32_t device_correct = to_host(ctx_, correct_).data<int32_t>()[0];
  // Pass order back to file order (the identity for MAX_LENGTH and LONGEST).
  const int32_t* in_pass_order = predictions.data<int32_t>();
  result.predictions.assign(order_.size(), 0);
  for (size_t position = 0; position < order_.size(); ++position) {
    result.predictions[static_cast<size_t>(order_[position])] = in_pass_order[position];
  }
  int64_t labelled = 0, correct = 0;
  for (size_t i = 0; i < labels_.size(); ++i) {
    if (labels_[i] == kNoLabel) continue;
    ++labelled;
    correct += result.predictions[i] == labels_[i];
  }
  NLPF_CHECK(correct == device_correct, ErrorCode::INTERNAL, "the device counted ", device_correct,
             " correct predictions, the predictions say ", correct);
  if (labelled > 0) result.accuracy = static_cast<double>(correct) / static_cast<double>(labelled);
  if (timer) result.batch_latencies_ms = timer->finish();
  return result;
}

}  // namespace nlpf
