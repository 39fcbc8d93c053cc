// Finite-difference check in double of layer_norm_backward for x, weight and bias; dx must overwrite (it
// starts as NaN), dweight and dbias must accumulate onto their previous values.
#include "grad/grad_check.h"
#include "ops/layer_norm.h"
#include "ops/layer_norm_cpu.h"

namespace nlpf::test {
namespace {

TEST(LayerNormGrad, MatchesFiniteDifferences) {
  const int64_t N = 5, C = 7;
  const double eps = 1e-5;
  std::mt19937 rng(12);
  std::vector<double> x = random_vector(rng, N * C, -2, 2), weight = random_vector(rng, C, 0.5, 1.5),
                      bias = random_vector(rng, C), r = random_vector(rng, N * C);
  std::vector<double> mean(N), rstd(N);
  auto loss = [&] {
    std::vector<double> out(N * C);
    cpu::layer_norm_forward(out.data(), mean.data(), rstd.data(), x.data(), weight.data(), bias.data(), eps,
                            N, C);
    return dot(out, r);
  };
  loss();  // saves mean and rstd at the unperturbed point
  const std::vector<double> saved_mean = mean, saved_rstd = rstd;
  std::vector<double> dx = nan_vector(N * C);
  const std::vector<double> dweight0 = random_vector(rng, C), dbias0 = random_vector(rng, C);
  std::vector<double> dweight = dweight0, dbias = dbias0;
  cpu::layer_norm_backward(dx.data(), dweight.data(), dbias.data(), r.data(), x.data(), weight.data(),
                           saved_mean.data(), saved_rstd.data(), N, C);
  expect_gradient("x", x, dx, loss);
  expect_gradient("weight", weight, subtract(dweight, dweight0), loss);
  expect_gradient("bias", bias, subtract(dbias, dbias0), loss);
}

}  // namespace
}  // namespace nlpf::test
