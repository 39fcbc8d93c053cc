// Finite-difference check in double of tanh_backward, which works from the saved output.
#include "grad/grad_check.h"
#include "ops/tanh.h"
#include "ops/tanh_cpu.h"

namespace nlpf::test {
namespace {

TEST(TanhGrad, MatchesFiniteDifferences) {
  const int64_t N = 19;
  std::mt19937 rng(15);
  std::vector<double> x = random_vector(rng, N, -3, 3), r = random_vector(rng, N);
  std::vector<double> out(N);
  auto loss = [&] {
    cpu::tanh_forward(out.data(), x.data(), N);
    return dot(out, r);
  };
  loss();
  const std::vector<double> saved_out = out;
  std::vector<double> dx = nan_vector(N);
  cpu::tanh_backward(dx.data(), r.data(), saved_out.data(), N);
  expect_gradient("x", x, dx, loss);
}

}  // namespace
}  // namespace nlpf::test
