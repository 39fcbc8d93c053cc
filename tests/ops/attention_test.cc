// attention_forward/backward (f32 Tensor API): values against a naive double reference that adds HF's
// finfo(double).min to the scores of padded keys, exact zeros for padded keys, the uniform row of an
// all-padded sequence, dropout scaling, f32 against the double kernel, and argument errors.
#include "ops/attention.h"
#include "ops/attention_cpu.h"

#include <limits>

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kF32{1e-5, 1e-6};
constexpr int64_t B = 3, T = 5, NH = 2, HS = 3, C = NH * HS;
// Sequence 0 full, sequence 1 padded after 3 tokens, sequence 2 all padding.
const std::vector<int32_t> kMask = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};

// HF's formulation: scores + (1 - mask) * finfo.min, softmax, dropout, probs v; all in double.
std::vector<double> naive_attention(const std::vector<double>& q, const std::vector<double>& k,
                                    const std::vector<double>& v, const std::vector<double>& keep, double p,
                                    std::vector<double>* probs) {
  std::vector<double> out(B * T * C, 0.0);
  probs->assign(B * NH * T * T, 0.0);
  const double lowest = std::numeric_limits<double>::lowest();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> s(T);
        double max_s = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < T; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < HS; ++i)
            dot += q[(b * T + t) * C + h * HS + i] * k[(b * T + j) * C + h * HS + i];
          s[j] = dot / std::sqrt(static_cast<double>(HS)) + (1 - kMask[b * T + j]) * lowest;
          max_s = std::max(max_s, s[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) sum += std::exp(s[j] - max_s);
        for (int64_t j = 0; j < T; ++j) {
          const int64_t at = ((b * NH + h) * T + t) * T + j;
          (*probs)[at] = std::exp(s[j] - max_s) / sum;
          const double w = (*probs)[at] * keep[at] / (1 - p);
          for (int64_t i = 0; i < HS; ++i)
            out[(b * T + t) * C + h * HS + i] += w * v[(b * T + j) * C + h * HS + i];
        }
      }
  return out;
}

struct Inputs {
  std::vector<double> q, k, v, keep;
  Inputs(std::mt19937& rng, double p)
      : q(round_to_float(random_vector(rng, B * T * C, -2, 2))),
        k(round_to_float(random_vector(rng, B * T * C, -2, 2))),
        v(round_to_float(random_vector(rng, B * T * C))),
        keep(B * NH * T * T, 1.0) {
    std::bernoulli_distribution kept(1 - p);
    if (p > 0)
      for (double& x : keep) x = kept(rng) ? 1.0 : 0.0;
  }
};

class Attention : public ::testing::TestWithParam<double> {};  // dropout p

TEST_P(Attention, ForwardMatchesHfStyleReference) {
  const double p = GetParam();
  std::mt19937 rng(81);
  Inputs in(rng, p);
  Tensor out = Tensor::empty(DType::F32, {B, T, C}), probs = Tensor::empty(DType::F32, {B, NH, T, T});
  Tensor keep = f32_tensor({B, NH, T, T}, in.keep);
  ops::attention_forward(cpu_context(), out, probs, f32_tensor({B, T, C}, in.q), f32_tensor({B, T, C}, in.k),
                         f32_tensor({B, T, C}, in.v), i32_tensor({B, T}, kMask), NH,
                         p > 0 ? ops::AttentionDropout{&keep, p} : ops::AttentionDropout{});
  std::vector<double> ref_probs;
  const std::vector<double> ref = naive_attention(in.q, in.k, in.v, in.keep, p, &ref_probs);
  EXPECT_TRUE(all_close(out, ref, kF32));
  EXPECT_TRUE(all_close(probs, ref_probs, kF32));
  const float* pr = probs.data<float>();
  for (int64_t h = 0; h < NH; ++h)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t j = 3; j < T; ++j)
        EXPECT_EQ(pr[((1 * NH + h) * T + t) * T + j], 0.0f) << "padded key " << j;
      for (int64_t j = 0; j < T; ++j) EXPECT_FLOAT_EQ(pr[((2 * NH + h) * T + t) * T + j], 1.0f / T);
    }
}

TEST_P(Attention, BackwardF32MatchesDoubleKernel) {
  const double p = GetParam();
  std::mt19937 rng(82);
  Inputs in(rng, p);
  const std::vector<double> dout = round_to_float(random_vector(rng, B * T * C));
  Tensor q = f32_tensor({B, T, C}, in.q), k = f32_tensor({B, T, C}, in.k), v = f32_tensor({B, T, C}, in.v);
  Tensor mask = i32_tensor({B, T}, kMask), keep = f32_tensor({B, NH, T, T}, in.keep);
  const ops::AttentionDropout dropout = p > 0 ? ops::AttentionDropout{&keep, p} : ops::AttentionDropout{};
  Tensor out = Tensor::empty(DType::F32, {B, T, C}), probs = Tensor::empty(DType::F32, {B, NH, T, T});
  ops::attention_forward(cpu_context(), out, probs, q, k, v, mask, NH, dropout);
  Tensor dq = Tensor::empty(DType::F32, {B, T, C}), dk = Tensor::empty(DType::F32, {B, T, C}),
         dv = Tensor::empty(DType::F32, {B, T, C});
  ops::attention_backward(cpu_context(), dq, dk, dv, f32_tensor({B, T, C}, dout), q, k, v, mask, probs, NH,
                          dropout);

  std::vector<double> ref_out(B * T * C), ref_probs(B * NH * T * T), ref_dq(B * T * C), ref_dk(B * T * C),
      ref_dv(B * T * C);
  const double* keep_ptr = p > 0 ? in.keep.data() : nullptr;
  cpu::attention_forward(ref_out.data(), ref_probs.data(), in.q.data(), in.k.data(), in.v.data(),
                         kMask.data(), keep_ptr, 1 / (1 - p), B, T, NH, HS);
  cpu::attention_backward(ref_dq.data(), ref_dk.data(), ref_dv.data(), dout.data(), in.q.data(), in.k.data(),
                          in.v.data(), kMask.data(), ref_probs.data(), keep_ptr, 1 / (1 - p), B, T, NH, HS);
  EXPECT_TRUE(all_close(dq, ref_dq, kF32));
  EXPECT_TRUE(all_close(dk, ref_dk, kF32));
  EXPECT_TRUE(all_close(dv, ref_dv, kF32));
  // Padded keys get no gradient through k or v.
  for (int64_t j = 3; j < T; ++j)
    for (int64_t c = 0; c < C; ++c) {
      EXPECT_EQ(dk.data<float>()[(1 * T + j) * C + c], 0.0f);
      EXPECT_EQ(dv.data<float>()[(1 * T + j) * C + c], 0.0f);
    }
}

INSTANTIATE_TEST_SUITE_P(Dropout, Attention, ::testing::Values(0.0, 0.25));

TEST(Attention, DrawnDropoutIsTheStoredMask) {
  // A DropoutDraw applies the mask dropout_mask writes for it (the CPU reference of the CUDA kernels that
  // draw it in place): forward and backward equal, bit for bit, the same call with that mask stored.
  std::mt19937 rng(83);
  Inputs in(rng, 0.25);
  const Tensor q = f32_tensor({B, T, C}, in.q), k = f32_tensor({B, T, C}, in.k),
               v = f32_tensor({B, T, C}, in.v);
  const Tensor mask = i32_tensor({B, T}, kMask), dout = f32_tensor({B, T, C}, random_vector(rng, B * T * C));
  const int64_t step = 3;
  const ops::DropoutDraw draw{77, 4 * 11, &step, uint64_t{1} << 42};
  Tensor keep = Tensor::empty(DType::F32, {B, NH, T, T});
  ops::dropout_mask(cpu_context(), keep, 0.25, 77, 4 * 11 + 3 * (uint64_t{1} << 42));
  const auto run = [&](const ops::AttentionDropout& dropout) {
    Tensor out = Tensor::empty(DType::F32, {B, T, C}), probs = Tensor::empty(DType::F32, {B, NH, T, T});
    ops::attention_forward(cpu_context(), out, probs, q, k, v, mask, NH, dropout);
    Tensor dq = Tensor::empty(DType::F32, {B, T, C}), dk = Tensor::empty(DType::F32, {B, T, C}),
           dv = Tensor::empty(DType::F32, {B, T, C});
    ops::attention_backward(cpu_context(), dq, dk, dv, dout, q, k, v, mask, probs, NH, dropout);
    std::vector<float> all;
    for (const Tensor* t : {&out, &dq, &dk, &dv})
      all.insert(all.end(), t->data<float>(), t->data<float>() + t->numel());
    return all;
  };
  EXPECT_EQ(run({nullptr, 0.25, &draw}), run({&keep, 0.25}));
  EXPECT_NE(run({nullptr, 0.25, &draw}), run({}));
  expect_error(
      [&] {
        run({&keep, 0.25, &draw});
      },
      ErrorCode::INVALID_ARGUMENT, {"attention_forward", "both a keep mask and a draw"});
}

// The packed ops on qkv [B,T,3C] are the three-part ops on its column blocks: the same bits, forward and
// backward (dqkv's blocks are dq, dk, dv), with dropout drawn.
TEST(Attention, PackedEqualsThreeParts) {
  std::mt19937 rng(84);
  const std::vector<double> qkv_values = round_to_float(random_vector(rng, B * T * 3 * C));
  const Tensor qkv = f32_tensor({B, T, 3 * C}, qkv_values);
  const auto part = [&](int64_t i) {
    std::vector<double> p;
    for (int64_t row = 0; row < B * T; ++row) {
      p.insert(p.end(), qkv_values.begin() + row * 3 * C + i * C,
               qkv_values.begin() + row * 3 * C + (i + 1) * C);
    }
    return f32_tensor({B, T, C}, p);
  };
  const Tensor q = part(0), k = part(1), v = part(2);
  const Tensor mask = i32_tensor({B, T}, kMask), dout = f32_tensor({B, T, C}, random_vector(rng, B * T * C));
  const int64_t step = 2;
  const ops::DropoutDraw draw{78, 8, &step, uint64_t{1} << 42};
  const ops::AttentionDropout dropout{nullptr, 0.25, &draw};

  Tensor out = Tensor::empty(DType::F32, {B, T, C}), probs = Tensor::empty(DType::F32, {B, NH, T, T});
  ops::attention_forward(cpu_context(), out, probs, q, k, v, mask, NH, dropout);
  Tensor dq = Tensor::empty(DType::F32, {B, T, C}), dk = Tensor::empty(DType::F32, {B, T, C}),
         dv = Tensor::empty(DType::F32, {B, T, C});
  ops::attention_backward(cpu_context(), dq, dk, dv, dout, q, k, v, mask, probs, NH, dropout);

  Tensor packed_out = Tensor::empty(DType::F32, {B, T, C}),
         packed_probs = Tensor::empty(DType::F32, {B, NH, T, T});
  ops::attention_forward_packed(cpu_context(), packed_out, packed_probs, qkv, mask, NH, dropout);
  Tensor dqkv = Tensor::empty(DType::F32, {B, T, 3 * C});
  ops::attention_backward_packed(cpu_context(), dqkv, dout, qkv, mask, packed_probs, NH, dropout);
  EXPECT_EQ(to_double(packed_out), to_double(out));
  EXPECT_EQ(to_double(packed_probs), to_double(probs));
  const std::vector<double> got = to_double(dqkv), want_q = to_double(dq), want_k = to_double(dk),
                            want_v = to_double(dv);
  for (int64_t row = 0; row < B * T; ++row) {
    for (int64_t c = 0; c < C; ++c) {
      ASSERT_EQ(got[row * 3 * C + c], want_q[row * C + c]) << "dq row " << row;
      ASSERT_EQ(got[row * 3 * C + C + c], want_k[row * C + c]) << "dk row " << row;
      ASSERT_EQ(got[row * 3 * C + 2 * C + c], want_v[row * C + c]) << "dv row " << row;
    }
  }
  Tensor bad_qkv = Tensor::zeros(DType::F32, {B, T, 3 * C + 1});
  expect_error([&] { ops::attention_forward_packed(cpu_context(), out, probs, bad_qkv, mask, NH); },
               ErrorCode::INVALID_ARGUMENT, {"attention_forward_packed", "qkv", "[3, 5, 19]", "[B, T, 3 C]"});
  expect_error([&] { ops::attention_backward_packed(cpu_context(), dq, dout, qkv, mask, probs, NH); },
               ErrorCode::INVALID_ARGUMENT, {"attention_backward_packed", "dqkv", "[3, 5, 6]", "[3, 5, 18]"});
}

TEST(AttentionErrors, ArgumentErrorsNameOpAndTensor) {
  Tensor q = Tensor::zeros(DType::F32, {B, T, C}), out = Tensor::empty(DType::F32, {B, T, C});
  Tensor probs = Tensor::empty(DType::F32, {B, NH, T, T}), mask = i32_tensor({B, T}, kMask);
  expect_error([&] { ops::attention_forward(cpu_context(), out, probs, q, q, q, mask, 4); },
               ErrorCode::INVALID_ARGUMENT, {"attention_forward", "C = 6", "NH = 4"});
  Tensor bad_k = Tensor::zeros(DType::F32, {B, T + 1, C});
  expect_error([&] { ops::attention_forward(cpu_context(), out, probs, q, bad_k, q, mask, NH); },
               ErrorCode::INVALID_ARGUMENT, {"attention_forward", "k", "[3, 6, 6]", "[3, 5, 6]"});
  Tensor bad_probs = Tensor::empty(DType::F32, {B, T, T});
  expect_error([&] { ops::attention_forward(cpu_context(), out, bad_probs, q, q, q, mask, NH); },
               ErrorCode::INVALID_ARGUMENT, {"attention_forward", "probs", "[3, 5, 5]", "[3, 2, 5, 5]"});
  Tensor float_mask = Tensor::zeros(DType::F32, {B, T});
  expect_error([&] { ops::attention_forward(cpu_context(), out, probs, q, q, q, float_mask, NH); },
               ErrorCode::INVALID_ARGUMENT, {"attention_forward", "attention_mask", "f32"});
  std::vector<int32_t> twos = kMask;
  twos[7] = 2;
  Tensor bad_mask = i32_tensor({B, T}, twos);
  expect_error([&] { ops::attention_forward(cpu_context(), out, probs, q, q, q, bad_mask, NH); },
               ErrorCode::INVALID_ARGUMENT, {"attention_forward", "attention_mask[7] = 2"});
  Tensor keep = Tensor::zeros(DType::F32, {B, NH, T, T + 1});
  expect_error(
      [&] {
        ops::attention_forward(cpu_context(), out, probs, q, q, q, mask, NH, {&keep, 0.1});
      },
      ErrorCode::INVALID_ARGUMENT, {"attention_forward", "keep", "[3, 2, 5, 6]"});
  Tensor good_keep = Tensor::zeros(DType::F32, {B, NH, T, T});
  expect_error(
      [&] {
        ops::attention_forward(cpu_context(), out, probs, q, q, q, mask, NH, {&good_keep, 1.0});
      },
      ErrorCode::INVALID_ARGUMENT, {"attention_forward", "p = 1"});
  Tensor dq = Tensor::empty(DType::F32, {B, T, C}), bad_dv = Tensor::empty(DType::F32, {B, C, T});
  expect_error([&] { ops::attention_backward(cpu_context(), dq, dq, bad_dv, q, q, q, q, mask, probs, NH); },
               ErrorCode::INVALID_ARGUMENT, {"attention_backward", "dv", "[3, 6, 5]"});
}

}  // namespace
}  // namespace nlpf::test
