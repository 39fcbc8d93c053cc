// Finite-difference check in double of gelu_backward (exact erf GELU) over a range that covers both tails.
#include "grad/grad_check.h"
#include "ops/gelu.h"
#include "ops/gelu_cpu.h"

namespace nlpf::test {
namespace {

TEST(GeluGrad, MatchesFiniteDifferences) {
  const int64_t N = 23;
  std::mt19937 rng(14);
  std::vector<double> x = random_vector(rng, N, -4, 4), r = random_vector(rng, N);
  auto loss = [&] {
    std::vector<double> out(N);
    cpu::gelu_forward(out.data(), x.data(), N);
    return dot(out, r);
  };
  std::vector<double> dx = nan_vector(N);
  cpu::gelu_backward(dx.data(), r.data(), x.data(), N);
  expect_gradient("x", x, dx, loss);
}

}  // namespace
}  // namespace nlpf::test
