// The learning-rate schedule against transformers' get_linear_schedule_with_warmup values, and the
// warm-up length of TrainingArguments.get_warmup_steps.
#include <gtest/gtest.h>

#include "core/error.h"
#include "train/lr_schedule.h"

namespace nlpf {
namespace {

TEST(LrSchedule, WarmupStepsAreCeilOfRatioTimesTotal) {
  EXPECT_EQ(warmup_steps_for(0.06, 100), 6);
  EXPECT_EQ(warmup_steps_for(0.06, 4210), 253);  // SST-2, batch 32, 2 epochs: ceil(252.6)
  EXPECT_EQ(warmup_steps_for(0.06, 2), 1);
  EXPECT_EQ(warmup_steps_for(0.0, 50), 0);
  EXPECT_EQ(warmup_steps_for(1.0, 50), 50);
}

TEST(LrSchedule, MatchesHuggingFaceValues) {
  // total 100, warm-up 6, peak 1: HF gives 0, 1/6, 5/6, 1, 50/94, 1/94.
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(1.0, 0, 6, 100), 0.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(1.0, 1, 6, 100), 1.0 / 6.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(1.0, 5, 6, 100), 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(1.0, 6, 6, 100), 1.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(1.0, 50, 6, 100), 50.0 / 94.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(1.0, 99, 6, 100), 1.0 / 94.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(1.0, 100, 6, 100), 0.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(1.0, 120, 6, 100), 0.0);  // never negative
  // Scaled by the peak, computed as peak * lambda (the order LambdaLR uses).
  EXPECT_EQ(linear_warmup_decay_lr(3e-5, 1, 6, 100), 3e-5 * (1.0 / 6.0));
  EXPECT_EQ(linear_warmup_decay_lr(3e-5, 50, 6, 100), 3e-5 * (50.0 / 94.0));
}

TEST(LrSchedule, NoWarmupStartsAtPeak) {
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(2.0, 0, 0, 10), 2.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay_lr(2.0, 5, 0, 10), 1.0);
}

TEST(LrSchedule, BadRatioNamesOption) {
  try {
    warmup_steps_for(1.5, 10);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("--warmup-ratio"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nlpf
