// fp8 activation calibration (model/fp8_calibration.h) on the tiny model: every linear layer's input is a
// site, each amax equals the largest |x| of that input over the calibration examples' real tokens (checked
// against the examples run one at a time, without padding, by hand, to 1e-6), the result is a function of the
// seed, it round-trips through JSON, and bad files are refused.
#include "model/fp8_calibration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "unit/tiny_bert.h"

namespace nlpf {
namespace {

using test::tiny_config;
using test::tiny_dataset;

TEST(Fp8Calibration, EveryLinearInputIsASiteWithItsLargestMagnitude) {
  BertForSequenceClassification model(tiny_config(2), 31);
  const TokenizedDataset data = tiny_dataset(16);
  const Fp8Calibration c = calibrate_fp8(model, data, 7, 42, 3, 16);
  EXPECT_EQ(c.examples, 7);
  EXPECT_EQ(c.seed, 42u);
  ASSERT_EQ(c.amax.size(),
            4u * 2 + 2);  // qkv, attention_output, intermediate, output per layer; pooler; classifier
  for (const char* site :
       {"layer.0.qkv", "layer.0.attention_output", "layer.0.intermediate", "layer.0.output", "layer.1.qkv",
        "layer.1.attention_output", "layer.1.intermediate", "layer.1.output", "pooler", "classifier"}) {
    ASSERT_TRUE(c.amax.count(site)) << site;
    EXPECT_GT(c.amax.at(site), 0.0f) << site;
    EXPECT_FLOAT_EQ(c.scale(site), c.amax.at(site) / 448.0f) << site;
  }
  // By hand: the same 7 examples one batch at a time through an observer that keeps the maxima.
  std::map<std::string, float> expected;
  model.set_activation_observer([&](const std::string& site, const Tensor& x, const Tensor*) {
    float m = expected[site];  // one example per batch: no padding
    for (int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::fabs(x.data<float>()[i]));
    expected[site] = m;
  });
  std::vector<int64_t> order = shuffled_order(data.size(), 42);
  order.resize(7);
  for (const int64_t i : order) {
    Batch batch = make_batch(data, std::span<const int64_t>(&i, 1), PaddingMode::LONGEST, 16);
    batch.labels.clear();
    model.forward(batch, ForwardMode::EVAL);
  }
  model.set_activation_observer(nullptr);
  // Within 1e-6 relative, not bit for bit: a batch of 3 padded to its longest and a batch of 1 run products
  // of other shapes, which may round differently in the last bits (1-2 ulp from layer 1 on, measured on a
  // machine whose OpenBLAS 0.3.21 detects its CPU as "Prescott"). A padded row taken into the maximum would
  // be another value altogether, which this still catches.
  for (const auto& [site, value] : expected) EXPECT_NEAR(c.amax.at(site), value, 1e-6f * value) << site;
}

TEST(Fp8Calibration, AFunctionOfTheSeedAndNoOtherState) {
  BertForSequenceClassification model(tiny_config(1), 32);
  const TokenizedDataset data = tiny_dataset(16);
  const Fp8Calibration a = calibrate_fp8(model, data, 4, 1, 2, 16),
                       b = calibrate_fp8(model, data, 4, 1, 2, 16);
  EXPECT_EQ(a.amax, b.amax);
  // Another seed picks other examples (the set has 11), so some range differs.
  const Fp8Calibration other = calibrate_fp8(model, data, 4, 2, 2, 16);
  EXPECT_NE(a.amax, other.amax);
  // All of the set, whatever the seed: the same maxima.
  EXPECT_EQ(calibrate_fp8(model, data, 100, 1, 4, 16).amax, calibrate_fp8(model, data, 100, 9, 4, 16).amax);
  // The observer is removed afterwards, and TRAIN forwards never call it.
  Batch batch = test::tiny_batch();
  bool called = false;
  model.set_activation_observer([&](const std::string&, const Tensor&, const Tensor*) { called = true; });
  model.forward(batch, ForwardMode::TRAIN, 0);
  EXPECT_FALSE(called);
}

TEST(Fp8Calibration, RoundTripsThroughJsonAndRefusesBadFiles) {
  BertForSequenceClassification model(tiny_config(1), 33);
  const Fp8Calibration c = calibrate_fp8(model, tiny_dataset(16), 5, 7, 5, 16);
  const Fp8Calibration back = Fp8Calibration::from_json(nlohmann::json::parse(c.to_json().dump()), "x.json");
  EXPECT_EQ(back.amax, c.amax);
  EXPECT_EQ(back.examples, 5);
  EXPECT_EQ(back.seed, 7u);
  nlohmann::json bad = c.to_json();
  bad["amax"]["pooler"] = -1.0;
  try {
    Fp8Calibration::from_json(bad, "run/fp8_calibration.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("run/fp8_calibration.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pooler"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Fp8Calibration::from_json(nlohmann::json::object(), "y.json"), Error);
  EXPECT_THROW(c.scale("layer.9.qkv"), Error);
  EXPECT_THROW(calibrate_fp8(model, tiny_dataset(16), 0, 1, 4, 16), Error);
}

}  // namespace
}  // namespace nlpf
