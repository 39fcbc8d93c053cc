// The fp8 parts of ops/bert_fused.h on the CPU: the E4M3 copy that LayerNorm, the embeddings' LayerNorm and
// the attention write beside their output equals quantize_e4m3_forward applied to that output, its argument
// checks, and the fp8 linears' refusal on the CPU (they run on CUDA only; the CPU engine is fp32).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/fp8.h"
#include "ops/bert_fused.h"
#include "ops/op_test_util.h"
#include "ops/quantize.h"

namespace nlpf::test {
namespace {

// Codes of `x` quantised with `scale` by the op.
Tensor quantised(const Tensor& x, const Tensor& scale) {
  Tensor codes = Tensor::empty(DType::F8E4M3, x.shape());
  ops::quantize_e4m3_forward(cpu_context(), codes, x, scale);
  return codes;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

TEST(BertFusedFp8, CopiesEqualTheOutputQuantised) {
  std::mt19937 rng(31);
  const int64_t B = 2, T = 5, C = 8, NH = 2, V = 11;
  const Tensor scale = f32_tensor({1}, {1.5 / kE4M3Max});  // some values saturate
  const Tensor w = f32_tensor({C}, random_vector(rng, C, 0.5, 2.0)),
               b = f32_tensor({C}, random_vector(rng, C));
  {
    const Tensor x = f32_tensor({B, T, C}, random_vector(rng, B * T * C, -3.0, 3.0));
    Tensor out = Tensor::empty(DType::F32, {B, T, C}), codes = Tensor::empty(DType::F8E4M3, {B, T, C});
    const ops::E4m3Copy copy{&codes, &scale};
    ops::layer_norm_inference_forward(cpu_context(), out, x, w, b, 1e-12, &copy);
    EXPECT_TRUE(same_bytes(codes, quantised(out, scale)));
  }
  {
    const Tensor ids = i32_tensor({B, T}, {1, 4, 7, 2, 10, 3, 3, 0, 9, 5}),
                 types = i32_tensor({B, T}, {0, 0, 1, 1, 1, 0, 0, 0, 0, 0});
    const Tensor word = f32_tensor({V, C}, random_vector(rng, V * C)),
                 position = f32_tensor({T, C}, random_vector(rng, T * C)),
                 token_type = f32_tensor({2, C}, random_vector(rng, 2 * C));
    Tensor out = Tensor::empty(DType::F32, {B, T, C}), codes = Tensor::empty(DType::F8E4M3, {B, T, C});
    const ops::E4m3Copy copy{&codes, &scale};
    ops::embeddings_layer_norm_forward(cpu_context(), out, ids, types, word, position, token_type, w, b,
                                       1e-12, &copy);
    EXPECT_TRUE(same_bytes(codes, quantised(out, scale)));
  }
  {
    const Tensor qkv = f32_tensor({B, T, 3 * C}, random_vector(rng, B * T * 3 * C, -2.0, 2.0));
    const Tensor mask = i32_tensor({B, T}, {1, 1, 1, 1, 1, 1, 1, 0, 0, 0});
    Tensor out = Tensor::empty(DType::F32, {B, T, C}), codes = Tensor::empty(DType::F8E4M3, {B, T, C});
    const ops::E4m3Copy copy{&codes, &scale};
    ops::fused_attention_forward(cpu_context(), out, qkv, mask, NH, &copy);
    EXPECT_TRUE(same_bytes(codes, quantised(out, scale)));
  }
}

TEST(BertFusedFp8, ChecksTheCopyAndRefusesFp8LinearsOnTheCpu) {
  const int64_t N = 3, C = 16;
  const Tensor x = f32_tensor({N, C}, std::vector<double>(N * C, 0.5)),
               w = f32_tensor({C}, std::vector<double>(C, 1.0)),
               b = f32_tensor({C}, std::vector<double>(C, 0.0)), scale = f32_tensor({1}, {0.01});
  Tensor out = Tensor::empty(DType::F32, {N, C});
  Tensor wrong_dtype = Tensor::empty(DType::BF16, {N, C}),
         wrong_shape = Tensor::empty(DType::F8E4M3, {N, C + 1});
  for (Tensor* codes : {&wrong_dtype, &wrong_shape}) {
    const ops::E4m3Copy copy{codes, &scale};
    EXPECT_THROW(ops::layer_norm_inference_forward(cpu_context(), out, x, w, b, 1e-12, &copy), Error);
  }
  Tensor codes = Tensor::empty(DType::F8E4M3, {N, C});
  const ops::E4m3Copy no_scale{&codes, nullptr};
  EXPECT_THROW(ops::layer_norm_inference_forward(cpu_context(), out, x, w, b, 1e-12, &no_scale), Error);

  const Tensor weight = Tensor::empty(DType::F8E4M3, {C, C}),
               bias = f32_tensor({C}, std::vector<double>(C, 0.0)).to(DType::BF16);
  Tensor y = Tensor::empty(DType::BF16, {N, C});
  expect_error(
      [&] { ops::linear_fp8_residual_forward(cpu_context(), y, codes, weight, scale, scale, bias, nullptr); },
      ErrorCode::UNSUPPORTED, {"CUDA only"});
  expect_error(
      [&] { ops::linear_fp8_gelu_forward(cpu_context(), y, codes, weight, scale, scale, bias, nullptr); },
      ErrorCode::UNSUPPORTED, {"CUDA only"});
}

}  // namespace
}  // namespace nlpf::test
