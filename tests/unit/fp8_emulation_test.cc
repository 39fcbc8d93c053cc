// The CPU emulation of the fp8 engine (fp8_emulation.h), which the GPU tests compare with: on the small
// random model of tests/golden/bert_inference_fp8_cuda_test.cc it quantises (its logits differ from fp32's)
// and stays within the bound that test states against fp32 (0.15 of the largest |logit|), so that bound
// leaves the GPU's bf16 storage room beyond E4M3's own error.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <random>

#include "model/bert_inference.h"
#include "model/bert_model.h"
#include "model/fp8_calibration.h"
#include "ops/op_test_util.h"
#include "unit/fp8_emulation.h"
#include "unit/tiny_bert.h"

namespace nlpf {
namespace {

// Two layers of hidden size 64 over a 101-token vocabulary.
BertConfig small_config() {
  BertConfig config;
  config.vocab_size = 101;
  config.hidden_size = 64;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 2;
  config.intermediate_size = 128;
  config.max_position_embeddings = 64;
  config.initializer_range = 0.1;
  return config;
}

TEST(Fp8Emulation, QuantisesAndStaysNearFp32) {
  const BertConfig config = small_config();
  BertForSequenceClassification model(config, 77);
  std::mt19937 rng(5);
  const TokenizedDataset data = test::random_dataset(rng, 12, 37, 101);
  const Fp8Calibration calibration = calibrate_fp8(model, data, 12, 7, 4, 37);
  const std::vector<int64_t> order = sequential_order(data.size());
  Batch batch = make_batch(data, order, PaddingMode::LONGEST, 37);
  const std::vector<double> emulated =
      test::fp8_emulated_logits(config, model.parameters(), calibration, batch);
  batch.labels.clear();
  const ModelOutput out = model.forward(batch, ForwardMode::EVAL);
  const std::vector<double> fp32(out.logits.data<float>(), out.logits.data<float>() + out.logits.numel());
  double largest = 0, worst = 0;
  for (size_t i = 0; i < fp32.size(); ++i) {
    largest = std::max(largest, std::abs(fp32[i]));
    worst = std::max(worst, std::abs(emulated[i] - fp32[i]));
  }
  std::cout << "[ fp8 emulation ] largest |logit| " << largest << ", largest difference from fp32 " << worst
            << " (" << worst / largest << " of it)\n";
  EXPECT_GT(worst, 0.0) << "nothing was quantised";
  EXPECT_TRUE(test::all_close(emulated, fp32, test::Tolerance{0.15, 0.15 * largest}));
}

TEST(Fp8Emulation, PerChannelQuantisesEachRowWithItsOwnScale) {
  // Rows 2^18 apart: per channel every row keeps E4M3's relative precision (as quantize_weight_e4m3 per
  // channel, decoded), per tensor the small row falls to E4M3's subnormals.
  const int64_t OC = 2, C = 16;
  std::vector<double> values;
  for (int64_t o = 0; o < OC; ++o) {
    for (int64_t c = 0; c < C; ++c) values.push_back((o == 0 ? 1.0 : 1.0 / 262144) * (0.3 + 0.05 * c));
  }
  const std::map<std::string, Tensor> parameters{{"w", test::f32_tensor({OC, C}, values)}};
  const Tensor channel = test::fp8_decoded_weight(parameters, {"w"}, true, Fp8Granularity::PER_CHANNEL),
               tensor = test::fp8_decoded_weight(parameters, {"w"}, true, Fp8Granularity::PER_TENSOR);
  std::vector<float> weight(values.begin(), values.end());
  const QuantizedWeight q = quantize_weight_e4m3(weight, OC, C, Fp8Granularity::PER_CHANNEL);
  double channel_error = 0, tensor_error = 0;
  for (int64_t i = 0; i < OC * C; ++i) {
    const auto at = static_cast<size_t>(i);
    EXPECT_EQ(channel.data<float>()[i], e4m3_to_f32(q.codes[at]) * q.scales[static_cast<size_t>(i / C)]) << i;
    if (i >= C) {  // the small row
      channel_error = std::max(channel_error, std::abs(channel.data<float>()[i] - values[at]) / values[at]);
      tensor_error = std::max(tensor_error, std::abs(tensor.data<float>()[i] - values[at]) / values[at]);
    }
  }
  EXPECT_LE(channel_error, 1.0 / 16);  // half a step of 3 mantissa bits
  EXPECT_GT(tensor_error, 1.0 / 16);
}

TEST(Fp8Emulation, PerChannelWeightScalesChangeTheLogitsAndStayNearFp32) {
  const BertConfig config = small_config();
  BertForSequenceClassification model(config, 78);
  std::mt19937 rng(6);
  const TokenizedDataset data = test::random_dataset(rng, 8, 29, 101);
  const Fp8Calibration calibration = calibrate_fp8(model, data, 8, 7, 4, 29);
  Batch batch = make_batch(data, sequential_order(data.size()), PaddingMode::LONGEST, 29);
  const std::vector<double> channel = test::fp8_emulated_logits(config, model.parameters(), calibration,
                                                                batch, Fp8Granularity::PER_CHANNEL),
                            tensor =
                                test::fp8_emulated_logits(config, model.parameters(), calibration, batch);
  batch.labels.clear();
  const ModelOutput out = model.forward(batch, ForwardMode::EVAL);
  const std::vector<double> fp32(out.logits.data<float>(), out.logits.data<float>() + out.logits.numel());
  double largest = 0;
  for (const double v : fp32) largest = std::max(largest, std::abs(v));
  EXPECT_NE(channel, tensor) << "per-channel scales quantised as per-tensor ones";
  EXPECT_TRUE(test::all_close(channel, fp32, test::Tolerance{0.15, 0.15 * largest}));
}

}  // namespace
}  // namespace nlpf
