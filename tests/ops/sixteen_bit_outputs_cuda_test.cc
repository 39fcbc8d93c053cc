// Mixed-precision training's 16-bit outputs on CUDA (an f32 op's result rounded once to bf16 or f16: the next
// GEMM's operand, bert_model.h: Memory): each equals the host's rounding of the same op's f32 result on the
// GPU, bit for bit, so the ops' own tests of the f32 result (against the CPU) cover the value. The LayerNorm
// and embedding-dropout copies beside their f32 output, the drawn dropout's and GELU's forward and backward,
// the packed attention's context and dqkv (vector and scalar head copies), and convert_many (odd sizes, an
// unaligned view, a table of tensors).
#include <cstring>
#include <string>
#include <vector>

#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/cuda_op_test_util.h"
#include "ops/dropout.h"
#include "ops/gelu.h"
#include "ops/layer_norm.h"

namespace nlpf::test {
namespace {

constexpr DType kDtypes[] = {DType::BF16, DType::F16};

// Whether the device tensor `got` (16-bit) holds the host rounding of the device f32 tensor `f32`.
::testing::AssertionResult rounded_from(ExecutionContext& gpu, const Tensor& got, const Tensor& f32) {
  const Tensor actual = to_host(gpu, got), expected = to_host(gpu, f32).to(got.dtype());
  if (actual.nbytes() != expected.nbytes()) return ::testing::AssertionFailure() << "sizes differ";
  const auto* a = static_cast<const uint16_t*>(actual.raw_data());
  const auto* e = static_cast<const uint16_t*>(expected.raw_data());
  for (int64_t i = 0; i < actual.numel(); ++i) {
    if (a[i] != e[i]) {
      return ::testing::AssertionFailure()
             << "element " << i << " of " << actual.numel() << ": bits 0x" << std::hex << a[i]
             << ", the rounding of the f32 result 0x" << e[i];
    }
  }
  return ::testing::AssertionSuccess();
}

std::string name_of(DType dtype) {
  return dtype_name(dtype);
}

class SixteenBitOutputsCuda : public CudaOpTest {};

TEST_F(SixteenBitOutputsCuda, LayerNormCopyIsTheOutputRounded) {
  std::mt19937 rng(1301);
  for (const DType dtype : kDtypes) {
    for (const int64_t C : {48, 37, 384}) {  // the warp kernel (C % 4 == 0) and the block kernel
      SCOPED_TRACE(name_of(dtype) + " C=" + std::to_string(C));
      const int64_t N = 29;
      const Tensor x = device(random_tensor(rng, {N, C}, -3, 3)), w = device(random_tensor(rng, {C})),
                   b = device(random_tensor(rng, {C}));
      Tensor out = poisoned({N, C}), mean = poisoned({N}), rstd = poisoned({N}),
             twin = poisoned({N, C}, dtype);
      ops::layer_norm_forward(gpu(), out, mean, rstd, x, w, b, 1e-12, &twin);
      EXPECT_TRUE(rounded_from(gpu(), twin, out));
      Tensor plain = poisoned({N, C});
      ops::layer_norm_forward(gpu(), plain, mean, rstd, x, w, b, 1e-12);
      EXPECT_TRUE(bit_identical(to_host(gpu(), out), to_host(gpu(), plain)));  // the copy changes nothing
    }
  }
}

TEST_F(SixteenBitOutputsCuda, DropoutOutputsAreTheF32ResultRounded) {
  std::mt19937 rng(1302);
  const int64_t N = 1001;
  const Tensor x = device(random_tensor(rng, {N}, -4, 4));
  const ops::DropoutDraw draw{17, 64, nullptr, 0};
  for (const DType dtype : kDtypes) {
    SCOPED_TRACE(name_of(dtype));
    Tensor out = poisoned({N}), twin = poisoned({N}, dtype), plain = poisoned({N});
    ops::dropout_forward(gpu(), out, x, 0.1, draw, &twin);
    ops::dropout_forward(gpu(), plain, x, 0.1, draw);
    EXPECT_TRUE(rounded_from(gpu(), twin, out));
    EXPECT_TRUE(bit_identical(to_host(gpu(), out), to_host(gpu(), plain)));
    Tensor dx16 = poisoned({N}, dtype), dx = poisoned({N});
    ops::dropout_backward(gpu(), dx16, x, 0.1, draw);
    ops::dropout_backward(gpu(), dx, x, 0.1, draw);
    EXPECT_TRUE(rounded_from(gpu(), dx16, dx));
  }
}

TEST_F(SixteenBitOutputsCuda, GeluOutputsAreTheF32ResultRounded) {
  std::mt19937 rng(1303);
  for (const int64_t N : {int64_t{1003}, int64_t{4096}}) {  // a tail, whole vectors
    const Tensor x = device(random_tensor(rng, {N}, -5, 5)), dout = device(random_tensor(rng, {N}));
    for (const DType dtype : kDtypes) {
      SCOPED_TRACE(name_of(dtype) + " N=" + std::to_string(N));
      Tensor out16 = poisoned({N}, dtype), out = poisoned({N});
      ops::gelu_forward(gpu(), out16, x);
      ops::gelu_forward(gpu(), out, x);
      EXPECT_TRUE(rounded_from(gpu(), out16, out));
      Tensor dx16 = poisoned({N}, dtype), dx = poisoned({N});
      ops::gelu_backward(gpu(), dx16, dout, x);
      ops::gelu_backward(gpu(), dx, dout, x);
      EXPECT_TRUE(rounded_from(gpu(), dx16, dx));
    }
  }
}

TEST_F(SixteenBitOutputsCuda, PackedAttentionOutputsAreTheF32ResultRounded) {
  std::mt19937 rng(1304);
  struct Size {
    int64_t B, T, NH, HS;
  };
  for (const Size s : {Size{3, 19, 3, 16}, Size{2, 7, 3, 5}}) {  // vector and scalar head copies
    const int64_t C = s.NH * s.HS;
    const Shape x_shape{s.B, s.T, C}, p_shape{s.B, s.NH, s.T, s.T}, qkv_shape{s.B, s.T, 3 * C};
    const Tensor qkv = device(random_tensor(rng, qkv_shape, -2, 2)),
                 dout = device(random_tensor(rng, x_shape));
    const Tensor mask = device(ragged_mask(rng, s.B, s.T));
    const ops::DropoutDraw draw{23, 8, nullptr, 0};
    const ops::AttentionDropout dropout{nullptr, 0.1, &draw};
    for (const DType dtype : kDtypes) {
      SCOPED_TRACE(name_of(dtype) + " HS=" + std::to_string(s.HS));
      Tensor out = poisoned(x_shape), out16 = poisoned(x_shape, dtype), probs = poisoned(p_shape);
      ops::attention_forward_packed(gpu(), out16, probs, qkv, mask, s.NH, dropout);
      ops::attention_forward_packed(gpu(), out, probs, qkv, mask, s.NH, dropout);
      EXPECT_TRUE(rounded_from(gpu(), out16, out));
      Tensor dqkv = poisoned(qkv_shape), dqkv16 = poisoned(qkv_shape, dtype);
      ops::attention_backward_packed(gpu(), dqkv16, dout, qkv, mask, probs, s.NH, dropout);
      ops::attention_backward_packed(gpu(), dqkv, dout, qkv, mask, probs, s.NH, dropout);
      EXPECT_TRUE(rounded_from(gpu(), dqkv16, dqkv));
    }
  }
}

TEST_F(SixteenBitOutputsCuda, ConvertManyRoundsEveryTensor) {
  std::mt19937 rng(1305);
  for (const DType dtype : kDtypes) {
    SCOPED_TRACE(name_of(dtype));
    // 70 tensors (two launches of the 64-entry table), odd sizes, one source a view 1 float into its buffer.
    std::vector<Tensor> srcs, dsts;
    for (int i = 0; i < 70; ++i) {
      const int64_t n = 1 + 37 * i;
      srcs.push_back(i == 3 ? device(random_tensor(rng, {n}, -1e3, 1e3), 1)
                            : device(random_tensor(rng, {n})));
      dsts.push_back(poisoned({n}, dtype));
    }
    std::vector<ops::ConvertPair> pairs;
    for (size_t i = 0; i < srcs.size(); ++i) pairs.push_back({&dsts[i], &srcs[i]});
    ops::convert_many(gpu(), pairs);
    for (size_t i = 0; i < srcs.size(); ++i)
      EXPECT_TRUE(rounded_from(gpu(), dsts[i], srcs[i])) << "tensor " << i;
  }
}

}  // namespace
}  // namespace nlpf::test
