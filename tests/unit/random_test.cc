// Philox4x32-10 against Random123's published known-answer vectors, the stream layout of random.h, and
// the statistics of the uniform and normal streams.
#include "core/random.h"

#include <gtest/gtest.h>

#include <cmath>

namespace nlpf {
namespace {

TEST(Philox, KnownAnswerVectors) {
  // Random123 kat_vectors, philox4x32 with 10 rounds.
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Philox, BlockLayoutPutsBlockInWordsZeroOneAndSeedInKey) {
  const uint64_t seed = 0x0123456789abcdefull, block = 0xfedcba9876543210ull,
                 subsequence = 0x1122334455667788ull;
  EXPECT_EQ(philox_block(seed, block, subsequence),
            philox4x32_10({0x76543210, 0xfedcba98, 0x55667788, 0x11223344}, {0x89abcdef, 0x01234567}));
  EXPECT_NE(philox_block(1, 0), philox_block(2, 0));
  EXPECT_NE(philox_block(1, 0), philox_block(1, 1));
}

TEST(Philox, UniformMappingIsTop24BitsAndStaysBelowOne) {
  EXPECT_EQ(uint32_to_uniform(0), 0.0f);
  EXPECT_EQ(uint32_to_uniform(0xffffffffu), 1.0f - 1.0f / 16777216.0f);
  EXPECT_EQ(uint32_to_uniform(0x80000000u), 0.5f);
  EXPECT_EQ(uint32_to_uniform(0x000000ffu), 0.0f);  // the low 8 bits never matter
  const PhiloxCounter x = philox_block(7, 3);
  for (int lane = 0; lane < 4; ++lane) EXPECT_EQ(philox_uniform(7, 12 + lane), uint32_to_uniform(x[lane]));
}

TEST(Philox, NormalIsBoxMullerOfTheBlock) {
  const PhiloxCounter x = philox_block(99, 5);
  for (int pair = 0; pair < 2; ++pair) {
    const double u_radius = ((x[2 * pair] >> 8) + 1.0) / 16777216.0;
    const double u_angle = (x[2 * pair + 1] >> 8) / 16777216.0;
    const double r = std::sqrt(-2.0 * std::log(u_radius));
    EXPECT_EQ(philox_normal(99, 20 + 2 * pair), static_cast<float>(r * std::cos(2 * M_PI * u_angle)));
    EXPECT_EQ(philox_normal(99, 21 + 2 * pair), static_cast<float>(r * std::sin(2 * M_PI * u_angle)));
  }
}

// 1e6 samples: the standard error of the mean is 0.001 and of the standard deviation about 0.0007, so
// 0.005 is a 5-sigma band (the stream is deterministic, so this never flakes; it catches a wrong formula).
TEST(Philox, NormalStreamHasMeanZeroAndUnitDeviation) {
  Tensor t = Tensor::empty(DType::F32, {1000000});
  fill_normal(t, 0.0f, 1.0f, 12345);
  double sum = 0, sum_sq = 0;
  const float* v = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    ASSERT_TRUE(std::isfinite(v[i])) << "index " << i;
    sum += v[i];
    sum_sq += static_cast<double>(v[i]) * v[i];
  }
  const double mean = sum / t.numel();
  const double stddev = std::sqrt(sum_sq / t.numel() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.005);
  EXPECT_NEAR(stddev, 1.0, 0.005);
}

TEST(Philox, UniformStreamIsInRangeWithMeanOneHalf) {
  Tensor t = Tensor::empty(DType::F32, {1000000});
  fill_uniform(t, -2.0f, 3.0f, 777);
  double sum = 0;
  const float* v = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    ASSERT_GE(v[i], -2.0f);
    ASSERT_LT(v[i], 3.0f);
    sum += v[i];
  }
  EXPECT_NEAR(sum / t.numel(), 0.5, 0.01);  // uniform on [-2, 3): sd 1.44, standard error 0.0014
}

TEST(Philox, FillUsesOffsetAndScales) {
  Tensor whole = Tensor::empty(DType::F32, {37});
  fill_normal(whole, 0.5f, 2.0f, 4242);
  Tensor tail = Tensor::empty(DType::F32, {30});
  fill_normal(tail, 0.5f, 2.0f, 4242, 7);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(tail.data<float>()[i], whole.data<float>()[i + 7]) << i;
  for (int i = 0; i < 37; ++i) {
    EXPECT_FLOAT_EQ(whole.data<float>()[i], 0.5f + 2.0f * philox_normal(4242, i)) << i;
  }
  Tensor other_seed = Tensor::empty(DType::F32, {37});
  fill_normal(other_seed, 0.5f, 2.0f, 4243);
  EXPECT_NE(other_seed.data<float>()[0], whole.data<float>()[0]);
}

TEST(Philox, FillSixteenBitTensorsRoundsTheFloatStream) {
  Tensor f32 = Tensor::empty(DType::F32, {64});
  fill_normal(f32, 0.0f, 0.02f, 5);
  for (DType dtype : {DType::F16, DType::BF16}) {
    Tensor half = Tensor::empty(dtype, {64});
    fill_normal(half, 0.0f, 0.02f, 5);
    const Tensor expected = f32.to(dtype);
    for (int i = 0; i < 64; ++i)
      EXPECT_EQ(half.data_u16()[i], expected.data_u16()[i]) << dtype_name(dtype) << " " << i;
  }
}

TEST(Philox, FillRejectsIntegerTensorsAndBadRange) {
  Tensor ints = Tensor::zeros(DType::I32, {4});
  try {
    fill_normal(ints, 0.0f, 1.0f, 1);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::INVALID_ARGUMENT);
    EXPECT_NE(std::string(e.what()).find("fill_normal"), std::string::npos) << e.what();
  }
  Tensor floats = Tensor::zeros(DType::F32, {4});
  EXPECT_THROW(fill_uniform(floats, 1.0f, 0.0f, 1), Error);
}

}  // namespace
}  // namespace nlpf
