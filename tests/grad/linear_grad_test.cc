// Finite-difference check in double of linear_backward (BLAS dgemm) for x, weight and bias; dx must
// overwrite (it starts as NaN), dweight and dbias must accumulate onto their previous values.
#include "grad/grad_check.h"
#include "ops/linear.h"
#include "ops/linear_cpu.h"

namespace nlpf::test {
namespace {

TEST(LinearGrad, MatchesFiniteDifferences) {
  const int64_t N = 5, C = 6, OC = 7;
  std::mt19937 rng(13);
  std::vector<double> x = random_vector(rng, N * C), weight = random_vector(rng, OC * C),
                      bias = random_vector(rng, OC), r = random_vector(rng, N * OC);
  auto loss = [&] {
    std::vector<double> y(N * OC);
    cpu::linear_forward(y.data(), x.data(), weight.data(), bias.data(), N, C, OC);
    return dot(y, r);
  };
  std::vector<double> dx = nan_vector(N * C);
  const std::vector<double> dweight0 = random_vector(rng, OC * C), dbias0 = random_vector(rng, OC);
  std::vector<double> dweight = dweight0, dbias = dbias0;
  cpu::linear_backward(dx.data(), dweight.data(), dbias.data(), r.data(), x.data(), weight.data(), N, C, OC);
  expect_gradient("x", x, dx, loss);
  expect_gradient("weight", weight, subtract(dweight, dweight0), loss);
  expect_gradient("bias", bias, subtract(dbias, dbias0), loss);
}

}  // namespace
}  // namespace nlpf::test
