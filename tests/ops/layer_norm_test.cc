// layer_norm_forward/backward (f32 Tensor API): values against a naive long-double reference, the saved
// statistics, f32 against the double kernel, and argument errors naming the op and the tensor.
#include "ops/layer_norm.h"
#include "ops/layer_norm_cpu.h"

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kF32{1e-5, 1e-6};
constexpr int64_t N = 7, C = 13;
constexpr double kEps = 1e-12;  // BERT's layer_norm_eps

TEST(LayerNorm, ForwardMatchesNaiveReference) {
  std::mt19937 rng(31);
  // An offset of 3 on every row: a one-pass variance in float would lose digits here.
  const std::vector<double> x = round_to_float(random_vector(rng, N * C, 2, 4)),
                            weight = round_to_float(random_vector(rng, C, 0.5, 1.5)),
                            bias = round_to_float(random_vector(rng, C));
  Tensor out = Tensor::empty(DType::F32, {1, N, C}), mean = Tensor::empty(DType::F32, {N}),
         rstd = Tensor::empty(DType::F32, {N});
  ops::layer_norm_forward(cpu_context(), out, mean, rstd, f32_tensor({1, N, C}, x), f32_tensor({C}, weight),
                          f32_tensor({C}, bias), kEps);
  std::vector<double> ref(N * C), ref_mean(N), ref_rstd(N);
  for (int64_t n = 0; n < N; ++n) {
    long double m = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) m += x[n * C + c];
    m /= C;
    for (int64_t c = 0; c < C; ++c) var += (x[n * C + c] - m) * (x[n * C + c] - m);
    var /= C;  // biased, as torch
    ref_mean[n] = static_cast<double>(m);
    ref_rstd[n] = static_cast<double>(1 / std::sqrt(var + kEps));
    for (int64_t c = 0; c < C; ++c)
      ref[n * C + c] = static_cast<double>((x[n * C + c] - m) / std::sqrt(var + kEps) * weight[c] + bias[c]);
  }
  EXPECT_TRUE(all_close(out, ref, kF32));
  EXPECT_TRUE(all_close(mean, ref_mean, kF32));
  EXPECT_TRUE(all_close(rstd, ref_rstd, kF32));
}

TEST(LayerNorm, BackwardF32MatchesDoubleKernel) {
  std::mt19937 rng(32);
  const std::vector<double> x = round_to_float(random_vector(rng, N * C, -2, 2)),
                            weight = round_to_float(random_vector(rng, C, 0.5, 1.5)),
                            bias = round_to_float(random_vector(rng, C)),
                            dout = round_to_float(random_vector(rng, N * C));
  Tensor out = Tensor::empty(DType::F32, {N, C}), mean = Tensor::empty(DType::F32, {N}),
         rstd = Tensor::empty(DType::F32, {N});
  Tensor xt = f32_tensor({N, C}, x), wt = f32_tensor({C}, weight);
  ops::layer_norm_forward(cpu_context(), out, mean, rstd, xt, wt, f32_tensor({C}, bias), 1e-5);
  Tensor dx = Tensor::empty(DType::F32, {N, C}), dweight = Tensor::zeros(DType::F32, {C}),
         dbias = Tensor::zeros(DType::F32, {C});
  ops::layer_norm_backward(cpu_context(), dx, dweight, dbias, f32_tensor({N, C}, dout), xt, wt, mean, rstd);

  std::vector<double> ref_out(N * C), ref_mean(N), ref_rstd(N), ref_dx(N * C), ref_dweight(C, 0.0),
      ref_dbias(C, 0.0);
  cpu::layer_norm_forward(ref_out.data(), ref_mean.data(), ref_rstd.data(), x.data(), weight.data(),
                          bias.data(), 1e-5, N, C);
  cpu::layer_norm_backward(ref_dx.data(), ref_dweight.data(), ref_dbias.data(), dout.data(), x.data(),
                           weight.data(), ref_mean.data(), ref_rstd.data(), N, C);
  EXPECT_TRUE(all_close(out, ref_out, kF32));
  EXPECT_TRUE(all_close(dx, ref_dx, kF32));
  EXPECT_TRUE(all_close(dweight, ref_dweight, kF32));
  EXPECT_TRUE(all_close(dbias, ref_dbias, kF32));
}

TEST(LayerNorm, ArgumentErrorsNameOpAndTensor) {
  Tensor x = Tensor::zeros(DType::F32, {N, C}), out = Tensor::empty(DType::F32, {N, C});
  Tensor mean = Tensor::empty(DType::F32, {N}), rstd = Tensor::empty(DType::F32, {N});
  Tensor weight = Tensor::zeros(DType::F32, {C}), bias = Tensor::zeros(DType::F32, {C});
  Tensor bad_weight = Tensor::zeros(DType::F32, {C - 1}), bad_mean = Tensor::empty(DType::F32, {N + 1});
  expect_error([&] { ops::layer_norm_forward(cpu_context(), out, mean, rstd, x, bad_weight, bias, kEps); },
               ErrorCode::INVALID_ARGUMENT, {"layer_norm_forward", "weight", "[12]", "[13]"});
  expect_error([&] { ops::layer_norm_forward(cpu_context(), out, bad_mean, rstd, x, weight, bias, kEps); },
               ErrorCode::INVALID_ARGUMENT, {"layer_norm_forward", "mean", "[8]"});
  expect_error([&] { ops::layer_norm_forward(cpu_context(), out, mean, rstd, x, weight, bias, -1.0); },
               ErrorCode::INVALID_ARGUMENT, {"layer_norm_forward", "eps"});
  Tensor bf16_x = Tensor::zeros(DType::BF16, {N, C});
  expect_error([&] { ops::layer_norm_forward(cpu_context(), out, mean, rstd, bf16_x, weight, bias, kEps); },
               ErrorCode::UNSUPPORTED, {"layer_norm_forward", "x", "bf16"});
  Tensor dx = Tensor::empty(DType::F32, {N, C + 1});
  expect_error([&] { ops::layer_norm_backward(cpu_context(), dx, weight, bias, out, x, weight, mean, rstd); },
               ErrorCode::INVALID_ARGUMENT, {"layer_norm_backward", "dx", "[7, 14]"});
}

}  // namespace
}  // namespace nlpf::test
