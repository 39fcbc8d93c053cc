// Finite-difference check in double of attention_backward for q, k and v: NH = 2 heads of HS = 3, one
// sequence padded, one with every key padded (constant probs), with and without a dropout keep mask.
// Gradients must overwrite (they start as NaN).
#include "grad/grad_check.h"
#include "ops/attention.h"
#include "ops/attention_cpu.h"

namespace nlpf::test {
namespace {

struct AttentionGradCase {
  const char* name;
  double p;  // dropout probability; 0 = no keep mask
};

void PrintTo(const AttentionGradCase& c, std::ostream* os) {
  *os << c.name;
}

class AttentionGrad : public ::testing::TestWithParam<AttentionGradCase> {};

TEST_P(AttentionGrad, MatchesFiniteDifferences) {
  const int64_t B = 3, T = 4, NH = 2, HS = 3, C = NH * HS;
  const double p = GetParam().p;
  std::mt19937 rng(19);
  std::vector<double> q = random_vector(rng, B * T * C), k = random_vector(rng, B * T * C),
                      v = random_vector(rng, B * T * C), r = random_vector(rng, B * T * C);
  const std::vector<int32_t> mask = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
  std::vector<double> keep(B * NH * T * T, 1.0);
  if (p > 0) {
    std::bernoulli_distribution kept(1 - p);
    for (double& x : keep) x = kept(rng) ? 1.0 : 0.0;
  }
  const double* keep_ptr = p > 0 ? keep.data() : nullptr;
  const double keep_scale = 1 / (1 - p);
  std::vector<double> probs(B * NH * T * T);
  auto loss = [&] {
    std::vector<double> out(B * T * C);
    cpu::attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), mask.data(), keep_ptr,
                           keep_scale, B, T, NH, HS);
    return dot(out, r);
  };
  loss();
  const std::vector<double> saved_probs = probs;
  std::vector<double> dq = nan_vector(B * T * C), dk = nan_vector(B * T * C), dv = nan_vector(B * T * C);
  cpu::attention_backward(dq.data(), dk.data(), dv.data(), r.data(), q.data(), k.data(), v.data(),
                          mask.data(), saved_probs.data(), keep_ptr, keep_scale, B, T, NH, HS);
  expect_gradient("q", q, dq, loss);
  expect_gradient("k", k, dk, loss);
  expect_gradient("v", v, dv, loss);
}

INSTANTIATE_TEST_SUITE_P(Dropout, AttentionGrad,
                         ::testing::Values(AttentionGradCase{"no_dropout", 0.0},
                                           AttentionGradCase{"p_0_3", 0.3}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace nlpf::test
