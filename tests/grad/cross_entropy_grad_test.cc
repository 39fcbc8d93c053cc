// Finite-difference check in double of cross_entropy_backward for the logits, with a non-unit dloss.
#include "grad/grad_check.h"
#include "ops/cross_entropy.h"
#include "ops/cross_entropy_cpu.h"

namespace nlpf::test {
namespace {

TEST(CrossEntropyGrad, MatchesFiniteDifferences) {
  const int64_t B = 3, NL = 5;
  const double dloss = 0.7;
  std::mt19937 rng(17);
  std::vector<double> logits = random_vector(rng, B * NL, -3, 3), probs(B * NL);
  const std::vector<int32_t> labels = {4, 0, 2};
  auto loss = [&] {
    return dloss * cpu::cross_entropy_forward(probs.data(), logits.data(), labels.data(), B, NL);
  };
  loss();
  const std::vector<double> saved_probs = probs;
  std::vector<double> dlogits = nan_vector(B * NL);
  cpu::cross_entropy_backward(dlogits.data(), saved_probs.data(), labels.data(), dloss, B, NL);
  expect_gradient("logits", logits, dlogits, loss);
}

}  // namespace
}  // namespace nlpf::test
