// Mixed-precision training's 16-bit outputs on the CPU (the reference the CUDA kernels are held to): each is
// the op's f32 result rounded once to bf16 or f16, bit for bit; the arguments they refuse.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "core/error.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/dropout.h"
#include "ops/gelu.h"
#include "ops/layer_norm.h"
#include "ops/op_test_util.h"

namespace nlpf {
namespace {

constexpr DType kDtypes[] = {DType::BF16, DType::F16};

Tensor random_f32(std::mt19937& rng, const Shape& shape, float low = -2, float high = 2) {
  Tensor t = Tensor::empty(DType::F32, shape);
  std::uniform_real_distribution<float> u(low, high);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

TEST(SixteenBitOutputs, AreTheF32ResultRounded) {
  std::mt19937 rng(1401);
  ExecutionContext& cpu = cpu_context();
  const int64_t B = 2, T = 5, NH = 2, HS = 3, C = NH * HS;
  const Tensor x = random_f32(rng, {B, T, C}), w = random_f32(rng, {C}), b = random_f32(rng, {C});
  const ops::DropoutDraw draw{5, 16, nullptr, 0};
  for (const DType dtype : kDtypes) {
    SCOPED_TRACE(dtype_name(dtype));
    // LayerNorm's copy beside its f32 output.
    Tensor out = Tensor::empty(DType::F32, {B, T, C}), mean = Tensor::empty(DType::F32, {B * T}),
           rstd = Tensor::empty(DType::F32, {B * T}), twin = Tensor::empty(dtype, {B, T, C});
    ops::layer_norm_forward(cpu, out, mean, rstd, x, w, b, 1e-12, &twin);
    EXPECT_TRUE(same_bytes(twin, out.to(dtype)));
    // The drawn dropout: a copy beside the f32 output, and a 16-bit output.
    Tensor dropped = Tensor::empty(DType::F32, {B, T, C}), copy = Tensor::empty(dtype, {B, T, C});
    ops::dropout_forward(cpu, dropped, x, 0.1, draw, &copy);
    EXPECT_TRUE(same_bytes(copy, dropped.to(dtype)));
    Tensor dx16 = Tensor::empty(dtype, {B, T, C});
    ops::dropout_backward(cpu, dx16, x, 0.1, draw);
    EXPECT_TRUE(same_bytes(dx16, dropped.to(dtype)));  // the same mask and scale: the same values
    // GELU, forward and backward.
    Tensor g = Tensor::empty(DType::F32, {B, T, C}), g16 = Tensor::empty(dtype, {B, T, C});
    ops::gelu_forward(cpu, g, x);
    ops::gelu_forward(cpu, g16, x);
    EXPECT_TRUE(same_bytes(g16, g.to(dtype)));
    ops::gelu_backward(cpu, g, dropped, x);
    ops::gelu_backward(cpu, g16, dropped, x);
    EXPECT_TRUE(same_bytes(g16, g.to(dtype)));
    // The packed attention's context and dqkv.
    const Tensor qkv = random_f32(rng, {B, T, 3 * C});
    Tensor mask = Tensor::empty(DType::I32, {B, T});
    for (int64_t i = 0; i < B * T; ++i) mask.data<int32_t>()[i] = i % T < 3 + i / T ? 1 : 0;
    Tensor probs = Tensor::empty(DType::F32, {B, NH, T, T}), context = Tensor::empty(DType::F32, {B, T, C}),
           context16 = Tensor::empty(dtype, {B, T, C});
    ops::attention_forward_packed(cpu, context16, probs, qkv, mask, NH);
    ops::attention_forward_packed(cpu, context, probs, qkv, mask, NH);
    EXPECT_TRUE(same_bytes(context16, context.to(dtype)));
    Tensor dqkv = Tensor::empty(DType::F32, {B, T, 3 * C}), dqkv16 = Tensor::empty(dtype, {B, T, 3 * C});
    ops::attention_backward_packed(cpu, dqkv16, x, qkv, mask, probs, NH);
    ops::attention_backward_packed(cpu, dqkv, x, qkv, mask, probs, NH);
    EXPECT_TRUE(same_bytes(dqkv16, dqkv.to(dtype)));
    // convert_many.
    Tensor converted = Tensor::empty(dtype, {B, T, C});
    const ops::ConvertPair pair{&converted, &x};
    ops::convert_many(cpu, {&pair, 1});
    EXPECT_TRUE(same_bytes(converted, x.to(dtype)));
  }
}

TEST(SixteenBitOutputs, BadArgumentsAreRefused) {
  std::mt19937 rng(1402);
  ExecutionContext& cpu = cpu_context();
  const Tensor x = random_f32(rng, {3, 4});
  const ops::DropoutDraw draw{5, 16, nullptr, 0};
  // A copy beside a 16-bit output, a copy of another shape, an f32 "copy".
  Tensor out16 = Tensor::empty(DType::BF16, {3, 4}), copy = Tensor::empty(DType::BF16, {3, 4});
  EXPECT_THROW(ops::dropout_forward(cpu, out16, x, 0.1, draw, &copy), Error);
  Tensor out = Tensor::empty(DType::F32, {3, 4}), wrong = Tensor::empty(DType::BF16, {4, 3}),
         f32_copy = Tensor::empty(DType::F32, {3, 4});
  EXPECT_THROW(ops::dropout_forward(cpu, out, x, 0.1, draw, &wrong), Error);
  Tensor mean = Tensor::empty(DType::F32, {3}), rstd = Tensor::empty(DType::F32, {3});
  const Tensor w = random_f32(rng, {4}), b = random_f32(rng, {4});
  EXPECT_THROW(ops::layer_norm_forward(cpu, out, mean, rstd, x, w, b, 1e-12, &f32_copy), Error);
  // An i32 output; convert_many into two dtypes at once, or from a 16-bit source.
  Tensor ids = Tensor::empty(DType::I32, {3, 4});
  EXPECT_THROW(ops::gelu_forward(cpu, ids, x), Error);
  Tensor half = Tensor::empty(DType::F16, {3, 4});
  const ops::ConvertPair mixed[] = {{&out16, &x}, {&half, &x}};
  EXPECT_THROW(ops::convert_many(cpu, mixed), Error);
  const ops::ConvertPair from_16bit{&half, &out16};
  EXPECT_THROW(ops::convert_many(cpu, {&from_16bit, 1}), Error);
}

}  // namespace
}  // namespace nlpf
