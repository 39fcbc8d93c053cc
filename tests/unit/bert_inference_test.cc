// BertInference on the CPU (the fused-op chain the CUDA engine runs, with the reference ops behind it)
// against BertForSequenceClassification's EVAL forward: logits, predictions and the on-device correct count
// on a padded batch, batches smaller than the plan, truncated layer counts, the same logits with the padded
// rows zeroed or normalised, and the refusals (precision on the CPU, a batch beyond the plan, a missing
// parameter).
#include "model/bert_inference.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "model/bert_model.h"
#include "model/inference_runner.h"
#include "ops/op_test_util.h"
#include "train/trainer.h"
#include "unit/tiny_bert.h"

namespace nlpf {
namespace {

using test::tiny_batch;
using test::tiny_config;
using test::tiny_dataset;

Tensor ints(const Shape& shape, const std::vector<int32_t>& values) {
  return test::i32_tensor(shape, values);
}

void expect_same_as_model(BertForSequenceClassification& model, int64_t max_batch, int64_t max_tokens,
                          bool first_token_last_layer = false) {
  const Batch batch = tiny_batch();
  const ModelOutput ref = model.forward(batch, ForwardMode::EVAL);
  BertInference engine(cpu_context(), model.config(), model.parameters(), Precision::FP32, max_batch,
                       max_tokens);
  EXPECT_TRUE(engine.first_token_last_layer());  // the default
  engine.set_first_token_last_layer(first_token_last_layer);
  Tensor correct = ints({1}, {5});  // accumulates onto what is there
  const Tensor labels = ints({batch.B}, batch.labels);
  const BertInference::Output out = engine.forward(
      ints({batch.B, batch.T}, batch.input_ids), ints({batch.B, batch.T}, batch.token_type_ids),
      ints({batch.B, batch.T}, batch.attention_mask), &labels, &correct);
  EXPECT_TRUE(test::all_close(out.logits, test::to_double(ref.logits), test::Tolerance{1e-5, 1e-6}));
  int32_t expected_correct = 5;
  for (int64_t b = 0; b < batch.B; ++b) {
    const float* l = ref.logits.data<float>() + b * 2;
    const int32_t prediction = l[1] > l[0] ? 1 : 0;
    EXPECT_EQ(out.predictions.data<int32_t>()[b], prediction) << "row " << b;
    expected_correct += prediction == batch.labels[b];
  }
  EXPECT_EQ(correct.data<int32_t>()[0], expected_correct);
}

TEST(BertInference, CpuChainEqualsTheModel) {
  BertForSequenceClassification model(tiny_config(), 11);
  expect_same_as_model(model, 3, 7);
}

TEST(BertInference, BatchSmallerThanThePlanAndTruncatedLayers) {
  BertForSequenceClassification model(tiny_config(3), 12);
  expect_same_as_model(model, 8, 16);
  model.truncate_layers(1);
  expect_same_as_model(model, 4, 9);
}

TEST(BertInference, FirstTokenLastLayerGivesTheModelsLogits) {
  // The last layer on token 0's row alone (BertInference::set_first_token_last_layer) against the model's
  // full forward: one layer (the only one is the last) and three.
  for (const int64_t layers : {1, 3}) {
    SCOPED_TRACE(std::to_string(layers) + " layers");
    BertForSequenceClassification model(tiny_config(layers), 14);
    expect_same_as_model(model, 3, 7, true);
    expect_same_as_model(model, 8, 16, true);
  }
}

TEST(BertInference, ZeroedPaddedRowsLeaveTheLogitsBitForBit) {
  // The LayerNorms' padded rows (ops/bert_fused.h) written as 0 or normalised as HF does: no output reads
  // them, so the logits are the same bits, and the engine's default is the zeros.
  BertForSequenceClassification model(tiny_config(), 13);
  const Batch batch = tiny_batch();  // sequences 1 and 2 end in padding
  std::vector<std::vector<float>> logits;
  for (const bool zero : {true, false}) {
    BertInference engine(cpu_context(), model.config(), model.parameters(), Precision::FP32, 3, 7);
    EXPECT_TRUE(engine.zero_padded_rows());
    engine.set_zero_padded_rows(zero);
    const BertInference::Output out = engine.forward(
        ints({batch.B, batch.T}, batch.input_ids), ints({batch.B, batch.T}, batch.token_type_ids),
        ints({batch.B, batch.T}, batch.attention_mask), nullptr, nullptr);
    const float* l = out.logits.data<float>();
    logits.emplace_back(l, l + out.logits.numel());
  }
  EXPECT_EQ(logits[0], logits[1]);
}

TEST(BertInference, Refusals) {
  BertForSequenceClassification model(tiny_config(), 11);
  EXPECT_THROW(BertInference(cpu_context(), model.config(), model.parameters(), Precision::FP16, 2, 8),
               Error);
  EXPECT_THROW(BertInference(cpu_context(), model.config(), model.parameters(), Precision::FP32, 2, 17),
               Error)
      << "longer than max_position_embeddings";
  // fp8 on the CPU: refused with the reason (E4M3 tensor cores), before a calibration is even asked for.
  try {
    BertInference fp8(cpu_context(), model.config(), model.parameters(), Precision::FP8, 2, 8);
    FAIL() << "fp8 ran on the CPU";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::UNSUPPORTED);
    EXPECT_NE(std::string(e.what()).find("fp8 needs E4M3 tensor cores"), std::string::npos) << e.what();
  }
  BertInference engine(cpu_context(), model.config(), model.parameters(), Precision::FP32, 2, 8);
  const Batch batch = tiny_batch();  // B = 3 > 2
  try {
    engine.forward(ints({3, 7}, batch.input_ids), ints({3, 7}, batch.token_type_ids),
                   ints({3, 7}, batch.attention_mask), nullptr, nullptr);
    FAIL() << "a batch beyond the plan ran";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the planned [2, 8]"), std::string::npos) << e.what();
  }
  std::map<std::string, Tensor> parameters = model.parameters();
  parameters.erase("bert.pooler.dense.bias");
  try {
    BertInference broken(cpu_context(), model.config(), parameters, Precision::FP32, 2, 8);
    FAIL() << "a model without its pooler bias loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bert.pooler.dense.bias"), std::string::npos) << e.what();
  }
}

// The prediction of every example evaluated alone (batch of 1, no padding at all), in file order.
std::vector<int32_t> one_by_one(BertForSequenceClassification& model, const TokenizedDataset& data) {
  return evaluate_classifier(model, data, 1, data.max_length, PaddingMode::LONGEST).predictions;
}

// A seed whose tiny model predicts both classes on tiny_dataset (6 of 11 positive), in no symmetric pattern.
constexpr uint64_t kMixedSeed = 10;

TEST(EvaluateClassifier, ThreePaddingsPredictAlikeInFileOrder) {
  BertForSequenceClassification model(tiny_config(), kMixedSeed);
  const TokenizedDataset data = tiny_dataset(16);
  const std::vector<int32_t> alone = one_by_one(model, data);
  // Lengths rise with the index, so the bucketed order (longest first) is file order reversed; the
  // predictions are no palindrome, so a pass that wrote them back in pass order would show.
  ASSERT_EQ(evaluation_order(data, 4, PaddingMode::BUCKETED),
            (std::vector<int64_t>{10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  ASSERT_NE(std::vector<int32_t>(alone.rbegin(), alone.rend()), alone);
  for (PaddingMode padding : {PaddingMode::MAX_LENGTH, PaddingMode::LONGEST, PaddingMode::BUCKETED}) {
    const EvaluationResult out = evaluate_classifier(model, data, 4, 16, padding);
    EXPECT_EQ(out.predictions, alone) << padding_name(padding);
    EXPECT_EQ(out.batch_latencies_ms.size(), 3u) << padding_name(padding);
    ASSERT_TRUE(out.accuracy.has_value());
    int64_t correct = 0;
    for (size_t i = 0; i < alone.size(); ++i) correct += alone[i] == data.labels[i];
    EXPECT_EQ(*out.accuracy, static_cast<double>(correct) / static_cast<double>(alone.size()));
  }
}

TEST(InferenceRunner, PassEqualsEvaluateClassifierWithAndWithoutCapture) {
  BertForSequenceClassification model(tiny_config(), kMixedSeed);
  const TokenizedDataset data = tiny_dataset(16);
  const EvaluationResult ref = evaluate_classifier(model, data, 4, 16, PaddingMode::LONGEST);
  ASSERT_EQ(ref.predictions, one_by_one(model, data));
  BertInference engine(cpu_context(), model.config(), model.parameters(), Precision::FP32, 4, 16);
  for (bool graphs : {true, false}) {
    // BUCKETED batches run longest first; the predictions come back in file order.
    for (PaddingMode padding : {PaddingMode::LONGEST, PaddingMode::MAX_LENGTH, PaddingMode::BUCKETED}) {
      InferenceRunner runner(
          engine, data, {.batch_size = 4, .padding = padding, .length_multiple = 8, .use_graphs = graphs});
      EXPECT_EQ(runner.batches(), 3u);
      for (const auto& [B, T] : runner.shapes()) EXPECT_EQ(T % 8, 0) << "B " << B << " T " << T;
      if (padding == PaddingMode::BUCKETED) {
        // Lengths 13..10, 9..6 and 5..3 batched together: 16, 16 (9 rounded up) and 8 tokens.
        EXPECT_EQ(runner.shapes(), (std::vector<std::pair<int64_t, int64_t>>{{4, 16}, {3, 8}}));
      }
      for (int pass = 0; pass < 2; ++pass) {
        const EvaluationResult out = runner.run_pass();
        EXPECT_EQ(out.predictions, ref.predictions)
            << "graphs " << graphs << " padding " << padding_name(padding) << " pass " << pass;
        ASSERT_TRUE(out.accuracy && ref.accuracy);
        EXPECT_EQ(*out.accuracy, *ref.accuracy);
      }
    }
  }
}

TEST(InferenceRunner, PlansForTheLongestBatchNotTheTruncationLength) {
  const TokenizedDataset data = tiny_dataset(16);  // examples of 3..13 tokens
  EXPECT_EQ(planned_sequence_length(data, {.batch_size = 4, .padding = PaddingMode::LONGEST}), 16);
  EXPECT_EQ(planned_sequence_length(data, {.batch_size = 4, .padding = PaddingMode::MAX_LENGTH}), 16);
  const TokenizedDataset shorter = tiny_dataset(64);  // same examples, truncation length 64
  EXPECT_EQ(planned_sequence_length(shorter, {.batch_size = 4, .padding = PaddingMode::LONGEST}), 16);
  EXPECT_EQ(planned_sequence_length(shorter,
                                    {.batch_size = 4, .padding = PaddingMode::LONGEST, .length_multiple = 5}),
            15);
  EXPECT_EQ(planned_sequence_length(shorter, {.batch_size = 4, .padding = PaddingMode::MAX_LENGTH}), 64);
  // A runner on an engine planned that short runs, and one planned shorter is refused before any work.
  BertConfig config = tiny_config();
  config.max_position_embeddings = 64;
  BertForSequenceClassification model(config, 21);
  BertInference engine(cpu_context(), model.config(), model.parameters(), Precision::FP32, 4, 16);
  InferenceRunner runner(engine, shorter, {.batch_size = 4, .padding = PaddingMode::LONGEST});
  EXPECT_EQ(runner.run_pass().predictions.size(), 11u);
  EXPECT_THROW(InferenceRunner(engine, shorter, {.batch_size = 4, .padding = PaddingMode::MAX_LENGTH}),
               Error);
}

TEST(InferenceRunner, IdsOutsideTheVocabularyAreRefusedBeforeAnyWork) {
  BertForSequenceClassification model(tiny_config(), 21);
  TokenizedDataset data = tiny_dataset(16);
  data.encodings[7].input_ids[1] = 40;  // vocab_size is 40
  BertInference engine(cpu_context(), model.config(), model.parameters(), Precision::FP32, 4, 16);
  try {
    InferenceRunner runner(engine, data, {.batch_size = 4});
    FAIL() << "an id outside the vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("evaluation example 7: token id 40"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
