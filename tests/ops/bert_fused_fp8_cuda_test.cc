// The fp8 inference ops of ops/bert_fused.h on the GPU (issue 13): the E4M3 copy that LayerNorm (and the
// embeddings' LayerNorm, and the attention) writes beside its 16-bit output is bit-identical to the op
// followed by quantize_e4m3_forward, on the warp path and the generic path of LayerNorm (a width that is not
// a multiple of the 16-byte vector), the tensor-core attention and the CUDA-core one (head size 48); the fp8
// linear with bias and residual against a double reference on the decoded operands; the intermediate GEMM's
// E4M3 output (cuBLASLt's D scale after the GELU epilogue) against its 16-bit output quantised by the op.
// Skipped without CUDA, without a GPU, or where cuBLASLt refuses the E4M3 output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp8.h"
#include "ops/bert_fused.h"
#include "ops/cuda_op_test_util.h"
#include "ops/linear.h"
#include "ops/quantize.h"

namespace nlpf::test {
namespace {

class BertFusedFp8Cuda : public CudaOpTest {
 protected:
  // Whether the device has E4M3 tensor cores (sm_89+); the fp8 GEMMs need them, the quantisation does not.
  bool has_fp8_tensor_cores() {
    for (const DeviceDescription& d : cuda_devices()) {
      if (d.device == gpu().device()) return d.compute_capability >= 89;
    }
    return false;
  }
};

// Byte-for-byte equality of two host tensors of codes; the first differences are printed.
::testing::AssertionResult same_bytes(const Tensor& actual, const Tensor& expected) {
  if (actual.nbytes() != expected.nbytes()) return ::testing::AssertionFailure() << "sizes differ";
  const auto* a = static_cast<const uint8_t*>(actual.raw_data());
  const auto* e = static_cast<const uint8_t*>(expected.raw_data());
  int64_t differ = 0;
  std::ostringstream first;
  for (size_t i = 0; i < actual.nbytes(); ++i) {
    if (a[i] != e[i] && differ++ < 8) {
      first << "\n  [" << i << "] got 0x" << std::hex << int{a[i]} << ", expected 0x" << int{e[i]}
            << std::dec;
    }
  }
  if (differ == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << differ << " of " << actual.nbytes() << " bytes differ:" << first.str();
}

Tensor scale_tensor(float value) {
  return f32_tensor({1}, {value});
}

TEST_F(BertFusedFp8Cuda, LayerNormCopyEqualsLayerNormThenQuantize) {
  std::mt19937 rng(21);
  const int64_t N = 37;
  for (const DType dtype : {DType::BF16, DType::F16, DType::F32}) {
    for (const int64_t C : {64, 768, 100}) {  // 100: not a multiple of 8, the generic kernel at 16 bits
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " C=" + std::to_string(C));
      // A wide range so that some values saturate at the scale chosen (amax / 448 of a smaller range).
      const Tensor x = random_tensor(rng, {N, C}, -4.0, 4.0).to(dtype);
      const Tensor w = random_tensor(rng, {C}, 0.5, 2.0), b = random_tensor(rng, {C}, -0.5, 0.5);
      const Tensor scale = device(scale_tensor(2.5f / kE4M3Max));
      const Tensor dx = device(x), dw = device(w), db = device(b);
      Tensor fused = poisoned({N, C}, dtype), codes = poisoned({N, C}, DType::F8E4M3);
      const ops::E4m3Copy copy{&codes, &scale};
      ops::layer_norm_inference_forward(gpu(), fused, dx, dw, db, 1e-12, &copy);
      Tensor plain = poisoned({N, C}, dtype), separate = poisoned({N, C}, DType::F8E4M3);
      ops::layer_norm_inference_forward(gpu(), plain, dx, dw, db, 1e-12);
      ops::quantize_e4m3_forward(gpu(), separate, plain, scale);
      EXPECT_TRUE(same_bytes(to_host(gpu(), fused), to_host(gpu(), plain)));
      EXPECT_TRUE(same_bytes(to_host(gpu(), codes), to_host(gpu(), separate)));
    }
  }
}

TEST_F(BertFusedFp8Cuda, LayerNormCopyOfZeroedPaddedRowsEqualsThenQuantize) {
  // With an attention_mask the padded rows leave as 0 and as code 0 (ops/bert_fused.h): still the bits of
  // the 16-bit output quantised.
  std::mt19937 rng(23);
  const int64_t B = 3, T = 13, C = 768;
  const Tensor mask_host = ragged_mask(rng, B, T), mask = device(mask_host);
  for (const DType dtype : {DType::BF16, DType::F16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const Tensor x = device(random_tensor(rng, {B, T, C}, -4.0, 4.0).to(dtype));
    const Tensor w = device(random_tensor(rng, {C}, 0.5, 2.0)), b = device(random_tensor(rng, {C}, 0.1, 0.5));
    const Tensor scale = device(scale_tensor(2.5f / kE4M3Max));
    Tensor fused = poisoned({B, T, C}, dtype), codes = poisoned({B, T, C}, DType::F8E4M3);
    const ops::E4m3Copy copy{&codes, &scale};
    ops::layer_norm_inference_forward(gpu(), fused, x, w, b, 1e-12, &copy, &mask);
    Tensor separate = poisoned({B, T, C}, DType::F8E4M3);
    ops::quantize_e4m3_forward(gpu(), separate, fused, scale);
    EXPECT_TRUE(same_bytes(to_host(gpu(), codes), to_host(gpu(), separate)));
    const Tensor host_codes = to_host(gpu(), codes);
    const auto* c = static_cast<const uint8_t*>(host_codes.raw_data());
    const int32_t* m = mask_host.data<int32_t>();
    int64_t zero_rows = 0;
    for (int64_t n = 0; n < B * T; ++n) {
      if (m[n] != 0 || m[n - n % T] == 0) continue;
      ++zero_rows;
      EXPECT_EQ(std::count(c + n * C, c + (n + 1) * C, uint8_t{0}), C) << "row " << n;
    }
    EXPECT_GE(zero_rows, T - T / 3) << "sequence 1 is a prefix of T / 3 tokens";
  }
}

TEST_F(BertFusedFp8Cuda, EmbeddingsLayerNormCopyEqualsThenQuantize) {
  std::mt19937 rng(22);
  const int64_t B = 3, T = 13, V = 50, P = 16, TV = 2;
  for (const DType dtype : {DType::BF16, DType::F16}) {
    for (const int64_t C : {64, 100}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " C=" + std::to_string(C));
      const Tensor ids = random_ids(rng, {B, T}, static_cast<int32_t>(V)),
                   types = random_ids(rng, {B, T}, static_cast<int32_t>(TV));
      const Tensor word = device(random_tensor(rng, {V, C}).to(dtype)),
                   position = device(random_tensor(rng, {P, C}).to(dtype)),
                   token_type = device(random_tensor(rng, {TV, C}).to(dtype));
      const Tensor w = device(random_tensor(rng, {C}, 0.5, 2.0)),
                   b = device(random_tensor(rng, {C}, -0.5, 0.5));
      const Tensor scale = device(scale_tensor(3.0f / kE4M3Max));
      const Tensor d_ids = device(ids), d_types = device(types);
      Tensor fused = poisoned({B, T, C}, dtype), codes = poisoned({B, T, C}, DType::F8E4M3);
      const ops::E4m3Copy copy{&codes, &scale};
      ops::embeddings_layer_norm_forward(gpu(), fused, d_ids, d_types, word, position, token_type, w, b,
                                         1e-12, &copy);
      Tensor plain = poisoned({B, T, C}, dtype), separate = poisoned({B, T, C}, DType::F8E4M3);
      ops::embeddings_layer_norm_forward(gpu(), plain, d_ids, d_types, word, position, token_type, w, b,
                                         1e-12);
      ops::quantize_e4m3_forward(gpu(), separate, plain, scale);
      EXPECT_TRUE(same_bytes(to_host(gpu(), fused), to_host(gpu(), plain)));
      EXPECT_TRUE(same_bytes(to_host(gpu(), codes), to_host(gpu(), separate)));
    }
  }
}

TEST_F(BertFusedFp8Cuda, AttentionCopyEqualsAttentionThenQuantize) {
  std::mt19937 rng(25);
  // T = 100: two query tiles of 64, the second all padding for sequence 1 (the kernel's zero-tile path); the
  // last sequence all padding (uniform rows); HS 48: the CUDA-core kernel and the quantisation pass.
  const int64_t B = 4, T = 100, NH = 2;
  for (const DType dtype : {DType::BF16, DType::F16}) {
    for (const int64_t HS : {32, 64, 48}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + " HS=" + std::to_string(HS));
      const int64_t C = NH * HS;
      const Tensor qkv = device(random_tensor(rng, {B, T, 3 * C}, -2.0, 2.0).to(dtype));
      const Tensor mask = device(ragged_mask(rng, B, T));
      const Tensor scale = device(scale_tensor(0.8f / kE4M3Max));  // some outputs saturate
      Tensor fused = poisoned({B, T, C}, dtype), codes = poisoned({B, T, C}, DType::F8E4M3);
      const ops::E4m3Copy copy{&codes, &scale};
      ops::fused_attention_forward(gpu(), fused, qkv, mask, NH, &copy);
      Tensor plain = poisoned({B, T, C}, dtype), separate = poisoned({B, T, C}, DType::F8E4M3);
      ops::fused_attention_forward(gpu(), plain, qkv, mask, NH);
      ops::quantize_e4m3_forward(gpu(), separate, plain, scale);
      EXPECT_TRUE(same_bytes(to_host(gpu(), fused), to_host(gpu(), plain)));
      EXPECT_TRUE(same_bytes(to_host(gpu(), codes), to_host(gpu(), separate)));
    }
  }
}

std::vector<double> decoded(const Tensor& codes, float scale) {
  std::vector<double> out(static_cast<size_t>(codes.numel()));
  const auto* q = static_cast<const uint8_t*>(codes.raw_data());
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<double>(e4m3_to_f32(q[i])) * scale;
  return out;
}

TEST_F(BertFusedFp8Cuda, LinearWithResidualMatchesTheDecodedProduct) {
  if (!has_fp8_tensor_cores()) GTEST_SKIP() << "no fp8 tensor cores (sm_89+) on this GPU";
  std::mt19937 rng(23);
  const int64_t N = 37, C = 384, OC = 128;
  float x_scale = 0, w_scale = 0;
  const Tensor x = codes_of(rng, {N, C}, 1.0f, &x_scale), w = codes_of(rng, {OC, C}, 0.05f, &w_scale);
  const Tensor bias = random_tensor(rng, {OC}, -0.5, 0.5).to(DType::BF16),
               residual = random_tensor(rng, {N, OC}, -2.0, 2.0).to(DType::BF16);
  const std::vector<double> xd = decoded(x, x_scale), wd = decoded(w, w_scale),
                            bd = to_double(bias.to(DType::F32)), rd = to_double(residual.to(DType::F32));
  std::vector<double> ref(static_cast<size_t>(N * OC));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < OC; ++o) {
      double sum = 0;
      for (int64_t c = 0; c < C; ++c) sum += xd[n * C + c] * wd[o * C + c];
      ref[n * OC + o] = sum + bd[o] + rd[n * OC + o];
    }
  }
  Tensor y = device(residual);  // the residual in place, as the engine adds it (y may be the residual)
  const Tensor dres = y;
  ops::linear_fp8_residual_forward(gpu(), y, device(x), device(w), device(scale_tensor(x_scale)),
                                   device(scale_tensor(w_scale)), device(bias), &dres);
  // One rounding of the fp32 sum to bf16 (2^-8 relative), relative to the output's scale (sums cancel).
  EXPECT_TRUE(all_close(to_double(to_host(gpu(), y).to(DType::F32)), ref, scaled_tolerance(2.0 / 256, ref)));
}

TEST_F(BertFusedFp8Cuda, GeluE4m3OutputIsTheQuantised16BitOutput) {
  if (!has_fp8_tensor_cores()) GTEST_SKIP() << "no fp8 tensor cores (sm_89+) on this GPU";
  std::mt19937 rng(24);
  const int64_t N = 37, C = 384, I = 1536;
  float x_scale = 0, w_scale = 0;
  const Tensor x = device(codes_of(rng, {N, C}, 1.0f, &x_scale)),
               w = device(codes_of(rng, {I, C}, 0.05f, &w_scale));
  const Tensor xs = device(scale_tensor(x_scale)), ws = device(scale_tensor(w_scale));
  const Tensor bias = device(random_tensor(rng, {I}, -0.5, 0.5).to(DType::BF16));
  // 16 bits out, then the quantisation op.
  Tensor y16 = poisoned({N, I}, DType::BF16);
  ops::linear_fp8_gelu_forward(gpu(), y16, x, w, xs, ws, bias, nullptr);
  const std::vector<double> g = to_double(to_host(gpu(), y16).to(DType::F32));
  const float y_scale = e4m3_scale_for_amax(static_cast<float>(largest_abs(g)));
  const Tensor y_scale_d = device(scale_tensor(y_scale)), y_inverse = device(scale_tensor(1.0f / y_scale));
  Tensor separate = poisoned({N, I}, DType::F8E4M3);
  ops::quantize_e4m3_forward(gpu(), separate, y16, y_scale_d);
  // E4M3 straight out of the GEMM.
  Tensor codes = poisoned({N, I}, DType::F8E4M3);
  if (!ops::linear_fp8_gelu_e4m3_supported(gpu(), codes, x, w, xs, ws, bias, y_inverse)) {
    GTEST_SKIP() << "cuBLASLt refuses the E4M3 output with the GELU epilogue here (the engine falls back to "
                    "bf16 and a quantise pass)";
  }
  ops::linear_fp8_gelu_forward(gpu(), codes, x, w, xs, ws, bias, &y_inverse);
  const std::vector<double> direct = decoded(to_host(gpu(), codes), y_scale),
                            via16 = decoded(to_host(gpu(), separate), y_scale);
  // The GEMM rounds its fp32 result once (times 1/scale) to E4M3; the other path rounds to bf16 first and
  // divides by the scale: the two codes differ only where a value lies near a rounding boundary, by one step
  // of E4M3 (2^-3 relative for normals; 2^-9 scale for subnormals).
  int64_t same = 0, beyond = 0;
  for (size_t i = 0; i < direct.size(); ++i) {
    same += direct[i] == via16[i];
    const double step =
        std::max(std::abs(direct[i]), std::abs(via16[i])) / 8.0 + std::ldexp(1.0, -9) * y_scale;
    if (std::abs(direct[i] - via16[i]) > step * (1 + 1e-6) && beyond++ < 8) {
      ADD_FAILURE() << "[" << i << "] E4M3 out " << direct[i] << ", via bf16 " << via16[i];
    }
  }
  EXPECT_GE(static_cast<double>(same) / static_cast<double>(direct.size()), 0.95)
      << same << " of " << direct.size() << " codes identical";
}

}  // namespace
}  // namespace nlpf::test
