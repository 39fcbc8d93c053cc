// The padded rows of the fused inference LayerNorms and GELU (ops/bert_fused.h) on the CPU: with the batch's
// attention_mask, the rows of padded tokens in a sequence whose token 0 is real are exactly 0 and every other
// row is the unmasked op's, bit for bit; a sequence with no token keeps its normalised rows; the mask's
// checks; the first query's attention is the full attention's token-0 row. tests/ops/bert_fused_cuda_test.cc
// holds the GPU to the same rule.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "ops/bert_fused.h"
#include "ops/cuda_op_test_util.h"
#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr int64_t B = 4, T = 6, C = 8;

// Sequence 0: holes (token 0 real); 1: a prefix of 2; 2: no token; 3: full.
const std::vector<int32_t> kMask = {1, 0, 1, 1, 0, 0,  //
                                    1, 1, 0, 0, 0, 0,  //
                                    0, 0, 0, 0, 0, 0,  //
                                    1, 1, 1, 1, 1, 1};

bool zeroed(int64_t b, int64_t t) {
  return kMask[b * T] != 0 && kMask[b * T + t] == 0;
}

// masked is plain with exactly the rows `zeroed` names set to 0.0f; rows of `width` elements.
void expect_padded_rows_zero(const Tensor& masked, const Tensor& plain, int64_t width = C) {
  const float* m = masked.data<float>();
  const float* p = plain.data<float>();
  int64_t zero_rows = 0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      SCOPED_TRACE("row b=" + std::to_string(b) + " t=" + std::to_string(t));
      const int64_t row = (b * T + t) * width;
      if (zeroed(b, t)) {
        ++zero_rows;
        for (int64_t c = 0; c < width; ++c) EXPECT_EQ(m[row + c], 0.0f);
        EXPECT_NE(p[row], 0.0f) << "the unmasked op computes this row";
      } else {
        EXPECT_EQ(std::memcmp(m + row, p + row, width * sizeof(float)), 0);
      }
    }
  }
  EXPECT_EQ(zero_rows, 3 + 4);
}

TEST(BertFused, LayerNormZeroesThePaddedRowsOnly) {
  std::mt19937 rng(41);
  const Tensor x = f32_tensor({B, T, C}, random_vector(rng, B * T * C, -2.0, 3.0));
  const Tensor w = f32_tensor({C}, random_vector(rng, C, 0.5, 1.5)),
               b = f32_tensor({C}, random_vector(rng, C, 0.1, 0.5));
  const Tensor mask = i32_tensor({B, T}, kMask);
  Tensor plain = Tensor::empty(DType::F32, {B, T, C}), masked = Tensor::empty(DType::F32, {B, T, C});
  ops::layer_norm_inference_forward(cpu_context(), plain, x, w, b, 1e-12);
  ops::layer_norm_inference_forward(cpu_context(), masked, x, w, b, 1e-12, nullptr, &mask);
  expect_padded_rows_zero(masked, plain);
}

TEST(BertFused, EmbeddingsLayerNormZeroesThePaddedRowsOnly) {
  std::mt19937 rng(42);
  const int64_t V = 13;
  std::vector<int32_t> id_values(B * T), type_values(B * T);
  for (int64_t i = 0; i < B * T; ++i) {
    id_values[i] = static_cast<int32_t>(rng() % V);
    type_values[i] = static_cast<int32_t>(rng() % 2);
  }
  const Tensor ids = i32_tensor({B, T}, id_values), types = i32_tensor({B, T}, type_values);
  const Tensor word = f32_tensor({V, C}, random_vector(rng, V * C)),
               position = f32_tensor({T, C}, random_vector(rng, T * C)),
               token_type = f32_tensor({2, C}, random_vector(rng, 2 * C));
  const Tensor w = f32_tensor({C}, random_vector(rng, C, 0.5, 1.5)),
               b = f32_tensor({C}, random_vector(rng, C, 0.1, 0.5));
  const Tensor mask = i32_tensor({B, T}, kMask);
  Tensor plain = Tensor::empty(DType::F32, {B, T, C}), masked = Tensor::empty(DType::F32, {B, T, C});
  ops::embeddings_layer_norm_forward(cpu_context(), plain, ids, types, word, position, token_type, w, b,
                                     1e-12);
  ops::embeddings_layer_norm_forward(cpu_context(), masked, ids, types, word, position, token_type, w, b,
                                     1e-12, nullptr, &mask);
  expect_padded_rows_zero(masked, plain);
}

TEST(BertFused, LinearGeluZeroesThePaddedRowsOnly) {
  std::mt19937 rng(43);
  const int64_t OC = 12;
  const Tensor x = f32_tensor({B, T, C}, random_vector(rng, B * T * C));
  const Tensor weight = f32_tensor({OC, C}, random_vector(rng, OC * C, -0.4, 0.4)),
               bias =
                   f32_tensor({OC}, random_vector(rng, OC, 0.5, 1.0));  // GELU of a padded row would not be 0
  const Tensor mask = i32_tensor({B, T}, kMask);
  Tensor plain = Tensor::empty(DType::F32, {B, T, OC}), masked = Tensor::empty(DType::F32, {B, T, OC});
  ops::linear_gelu_forward(cpu_context(), plain, x, weight, bias);
  ops::linear_gelu_forward(cpu_context(), masked, x, weight, bias, &mask);
  expect_padded_rows_zero(masked, plain, OC);
}

TEST(BertFused, LinearResidualLayerNormIsTheLinearThenTheLayerNormAndZeroesThePaddedRowsOnly) {
  std::mt19937 rng(44);
  const int64_t OC = 12;
  const Tensor x = f32_tensor({B, T, C}, random_vector(rng, B * T * C)),
               residual = f32_tensor({B, T, OC}, random_vector(rng, B * T * OC));
  const Tensor weight = f32_tensor({OC, C}, random_vector(rng, OC * C, -0.4, 0.4)),
               bias = f32_tensor({OC}, random_vector(rng, OC)),
               ln_w = f32_tensor({OC}, random_vector(rng, OC)),
               ln_b = f32_tensor({OC}, random_vector(rng, OC));
  const Tensor mask = i32_tensor({B, T}, kMask);
  Tensor chain = Tensor::empty(DType::F32, {B, T, OC}), plain = Tensor::empty(DType::F32, {B, T, OC}),
         masked = Tensor::empty(DType::F32, {B, T, OC});
  ops::linear_residual_forward(cpu_context(), chain, x, weight, bias, &residual);
  ops::layer_norm_inference_forward(cpu_context(), chain, chain, ln_w, ln_b, 1e-12);
  ops::linear_residual_layer_norm_forward(cpu_context(), plain, x, weight, bias, residual, ln_w, ln_b, 1e-12);
  ops::linear_residual_layer_norm_forward(cpu_context(), masked, x, weight, bias, residual, ln_w, ln_b, 1e-12,
                                          &mask);
  EXPECT_EQ(std::memcmp(plain.raw_data(), chain.raw_data(), chain.nbytes()), 0);
  expect_padded_rows_zero(masked, plain, OC);
}

TEST(BertFused, LayerNormRefusesAMaskOfAnotherShapeOrDtype) {
  const Tensor x = Tensor::zeros(DType::F32, {B, T, C}), w = Tensor::zeros(DType::F32, {C}),
               b = Tensor::zeros(DType::F32, {C});
  Tensor out = Tensor::empty(DType::F32, {B, T, C});
  const Tensor short_mask = i32_tensor({B, T - 1}, std::vector<int32_t>(B * (T - 1), 1));
  expect_error(
      [&] { ops::layer_norm_inference_forward(cpu_context(), out, x, w, b, 1e-12, nullptr, &short_mask); },
      ErrorCode::INVALID_ARGUMENT, {"attention_mask", "[4, 6]"});
  const Tensor f32_mask = Tensor::zeros(DType::F32, {B, T});
  expect_error(
      [&] { ops::layer_norm_inference_forward(cpu_context(), out, x, w, b, 1e-12, nullptr, &f32_mask); },
      ErrorCode::INVALID_ARGUMENT, {"attention_mask"});
  const Tensor flat = Tensor::zeros(DType::F32, {B * T, C});
  Tensor flat_out = Tensor::empty(DType::F32, {B * T, C});
  const Tensor mask = i32_tensor({B, T}, kMask);
  expect_error(
      [&] { ops::layer_norm_inference_forward(cpu_context(), flat_out, flat, w, b, 1e-12, nullptr, &mask); },
      ErrorCode::INVALID_ARGUMENT, {"[B, T, C]"});
}

TEST(BertFused, FirstQueryAttentionIsTheFullAttentionsFirstRowAndChecksItsShapes) {
  // kMask's four sequences: holes, a prefix, no token (uniform attention), full; two heads of 4.
  std::mt19937 rng(17);
  const Tensor qkv = random_tensor(rng, {B, T, 3 * C}, -2, 2), mask = i32_tensor({B, T}, kMask);
  Tensor full = Tensor::empty(DType::F32, {B, T, C}), first = Tensor::empty(DType::F32, {B, 1, C});
  ops::fused_attention_forward(cpu_context(), full, qkv, mask, 2);
  ops::first_query_attention_forward(cpu_context(), first, qkv, mask, 2);
  for (int64_t b = 0; b < B; ++b) {
    EXPECT_EQ(std::memcmp(first.data<float>() + b * C, full.data<float>() + b * T * C, C * sizeof(float)), 0)
        << "sequence " << b;
  }
  Tensor every_row = Tensor::empty(DType::F32, {B, T, C});
  expect_error([&] { ops::first_query_attention_forward(cpu_context(), every_row, qkv, mask, 2); },
               ErrorCode::INVALID_ARGUMENT, {"out", "[4, 1, 8]"});
  expect_error([&] { ops::first_query_attention_forward(cpu_context(), first, qkv, mask, 3); },
               ErrorCode::INVALID_ARGUMENT, {"NH = 3"});
}

}  // namespace
}  // namespace nlpf::test
