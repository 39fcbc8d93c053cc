// Finite-difference check in double of dropout's backward (the forward map applied to dout) with a fixed
// keep mask holding both kept and dropped elements.
#include "grad/grad_check.h"
#include "ops/dropout.h"
#include "ops/dropout_cpu.h"

namespace nlpf::test {
namespace {

TEST(DropoutGrad, MatchesFiniteDifferences) {
  const int64_t N = 17;
  const double p = 0.3, scale = 1 / (1 - p);
  std::mt19937 rng(16);
  std::vector<double> x = random_vector(rng, N), r = random_vector(rng, N), keep(N);
  for (int64_t i = 0; i < N; ++i) keep[i] = i % 3 == 1 ? 0.0 : 1.0;
  auto loss = [&] {
    std::vector<double> out(N);
    cpu::dropout_forward(out.data(), x.data(), keep.data(), scale, N);
    return dot(out, r);
  };
  std::vector<double> dx = nan_vector(N);
  cpu::dropout_forward(dx.data(), r.data(), keep.data(), scale, N);  // the backward pass
  expect_gradient("x", x, dx, loss);
}

}  // namespace
}  // namespace nlpf::test
