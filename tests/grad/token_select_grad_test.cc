// Finite-difference check in double of token_select_backward (the pooler's [CLS] selection); dx must
// overwrite every element, also those of the unselected tokens.
#include "grad/grad_check.h"
#include "ops/token_select.h"
#include "ops/token_select_cpu.h"

namespace nlpf::test {
namespace {

TEST(TokenSelectGrad, MatchesFiniteDifferences) {
  const int64_t B = 2, T = 3, C = 5;
  for (int64_t index : {0, 2}) {
    std::mt19937 rng(18);
    std::vector<double> x = random_vector(rng, B * T * C), r = random_vector(rng, B * C);
    auto loss = [&] {
      std::vector<double> out(B * C);
      cpu::token_select_forward(out.data(), x.data(), index, B, T, C);
      return dot(out, r);
    };
    std::vector<double> dx = nan_vector(B * T * C);
    cpu::token_select_backward(dx.data(), r.data(), index, B, T, C);
    expect_gradient("x", x, dx, loss);
  }
}

}  // namespace
}  // namespace nlpf::test
