// embeddings_forward/backward (f32 Tensor API): values against a naive double reference, f32 against the
// double kernel, and argument errors (shapes, dtypes, ids out of range) naming the op and the tensor.
#include "ops/embeddings.h"
#include "ops/embeddings_cpu.h"

#include "ops/op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kF32{1e-5, 1e-6};
constexpr int64_t B = 2, T = 3, C = 5, V = 7, P = 4, TV = 2;

struct Inputs {
  std::vector<double> word, position, token_type;
  std::vector<int32_t> ids = {3, 6, 3, 0, 3, 5}, types = {0, 1, 1, 0, 0, 1};
  explicit Inputs(std::mt19937& rng)
      : word(round_to_float(random_vector(rng, V * C))),
        position(round_to_float(random_vector(rng, P * C))),
        token_type(round_to_float(random_vector(rng, TV * C))) {}
};

TEST(Embeddings, ForwardMatchesNaiveSum) {
  std::mt19937 rng(21);
  Inputs in(rng);
  Tensor out = Tensor::empty(DType::F32, {B, T, C});
  ops::embeddings_forward(cpu_context(), out, i32_tensor({B, T}, in.ids), i32_tensor({B, T}, in.types),
                          f32_tensor({V, C}, in.word), f32_tensor({P, C}, in.position),
                          f32_tensor({TV, C}, in.token_type));
  std::vector<double> ref(B * T * C);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c)
        ref[(b * T + t) * C + c] = in.word[in.ids[b * T + t] * C + c] + in.position[t * C + c] +
                                   in.token_type[in.types[b * T + t] * C + c];
  EXPECT_TRUE(all_close(out, ref, kF32));
}

TEST(Embeddings, BackwardF32MatchesDoubleKernel) {
  std::mt19937 rng(22);
  Inputs in(rng);
  const std::vector<double> dout = round_to_float(random_vector(rng, B * T * C));
  const std::vector<double> dword0 = round_to_float(random_vector(rng, V * C));
  Tensor dword = f32_tensor({V, C}, dword0);
  Tensor dposition = Tensor::zeros(DType::F32, {P, C}), dtoken_type = Tensor::zeros(DType::F32, {TV, C});
  ops::embeddings_backward(cpu_context(), dword, dposition, dtoken_type, f32_tensor({B, T, C}, dout),
                           i32_tensor({B, T}, in.ids), i32_tensor({B, T}, in.types));
  std::vector<double> ref_word = dword0, ref_position(P * C, 0.0), ref_token_type(TV * C, 0.0);
  cpu::embeddings_backward(ref_word.data(), ref_position.data(), ref_token_type.data(), dout.data(),
                           in.ids.data(), in.types.data(), nullptr, B, T, C, V, TV);
  EXPECT_TRUE(all_close(dword, ref_word, kF32));
  EXPECT_TRUE(all_close(dposition, ref_position, kF32));
  EXPECT_TRUE(all_close(dtoken_type, ref_token_type, kF32));
  // Id 3 appears three times: its row sums three rows of dout onto its previous value.
  EXPECT_NEAR(dword.data<float>()[3 * C], dword0[3 * C] + dout[0] + dout[2 * C] + dout[4 * C], 1e-5);
}

// A padded row adds nothing where its sequence's token 0 is not padding: the same bits as that row's dout
// set to zero (what a BERT's padded positions carry), and a table entry fed only by skipped rows keeps its
// value. A sequence whose token 0 is padding adds every row.
TEST(Embeddings, BackwardPaddingMaskSkipsPaddedRowsLikeZeroGradients) {
  std::mt19937 rng(24);
  Inputs in(rng);  // ids {3, 6, 3, 0, 3, 5}: id 5 only in row 5
  const std::vector<double> dout = round_to_float(random_vector(rng, B * T * C));
  const std::vector<double> table0 = round_to_float(random_vector(rng, V * C));
  const Tensor ids = i32_tensor({B, T}, in.ids), types = i32_tensor({B, T}, in.types);
  struct Case {
    std::vector<int32_t> mask;
    std::vector<int64_t> skipped;
  };
  for (const Case& k : {Case{{1, 1, 1, 1, 0, 0}, {4, 5}}, Case{{0, 1, 0, 1, 1, 0}, {5}}}) {
    const Tensor padding_mask = i32_tensor({B, T}, k.mask);
    Tensor dword = f32_tensor({V, C}, table0), dposition = Tensor::zeros(DType::F32, {P, C}),
           dtoken_type = Tensor::zeros(DType::F32, {TV, C});
    ops::embeddings_backward(cpu_context(), dword, dposition, dtoken_type, f32_tensor({B, T, C}, dout), ids,
                             types, &padding_mask);
    std::vector<double> zeroed = dout;
    for (const int64_t row : k.skipped) std::fill_n(zeroed.begin() + row * C, C, 0.0);
    Tensor zword = f32_tensor({V, C}, table0), zposition = Tensor::zeros(DType::F32, {P, C}),
           ztoken_type = Tensor::zeros(DType::F32, {TV, C});
    ops::embeddings_backward(cpu_context(), zword, zposition, ztoken_type, f32_tensor({B, T, C}, zeroed), ids,
                             types);
    EXPECT_EQ(to_double(dword), to_double(zword));
    EXPECT_EQ(to_double(dposition), to_double(zposition));
    EXPECT_EQ(to_double(dtoken_type), to_double(ztoken_type));
    for (int64_t c = 0; c < C; ++c) {
      EXPECT_EQ(dword.data<float>()[5 * C + c], static_cast<float>(table0[5 * C + c]));
    }
  }
  Tensor dword = f32_tensor({V, C}, table0), dposition = Tensor::zeros(DType::F32, {P, C}),
         dtoken_type = Tensor::zeros(DType::F32, {TV, C});
  const Tensor short_mask = i32_tensor({B, T - 1}, {1, 1, 1, 1});
  expect_error(
      [&] {
        ops::embeddings_backward(cpu_context(), dword, dposition, dtoken_type, f32_tensor({B, T, C}, dout),
                                 ids, types, &short_mask);
      },
      ErrorCode::INVALID_ARGUMENT, {"embeddings_backward", "padding_mask"});
}

TEST(Embeddings, ArgumentErrorsNameOpAndTensor) {
  std::mt19937 rng(23);
  Inputs in(rng);
  Tensor ids = i32_tensor({B, T}, in.ids), types = i32_tensor({B, T}, in.types);
  Tensor word = f32_tensor({V, C}, in.word), position = f32_tensor({P, C}, in.position),
         token_type = f32_tensor({TV, C}, in.token_type);
  Tensor out = Tensor::empty(DType::F32, {B, T, C});
  Tensor bad_out = Tensor::empty(DType::F32, {B, T, C + 1});
  expect_error(
      [&] { ops::embeddings_forward(cpu_context(), bad_out, ids, types, word, position, token_type); },
      ErrorCode::INVALID_ARGUMENT, {"embeddings_forward", "out", "[2, 3, 6]", "[2, 3, 5]"});
  Tensor short_position = f32_tensor({2, C}, std::vector<double>(2 * C, 0.0));
  expect_error(
      [&] { ops::embeddings_forward(cpu_context(), out, ids, types, word, short_position, token_type); },
      ErrorCode::INVALID_ARGUMENT, {"embeddings_forward", "position", "[2, 5]"});
  Tensor float_ids = f32_tensor({B, T}, std::vector<double>(B * T, 0.0));
  expect_error(
      [&] { ops::embeddings_forward(cpu_context(), out, float_ids, types, word, position, token_type); },
      ErrorCode::INVALID_ARGUMENT, {"embeddings_forward", "input_ids", "f32"});
  Tensor bad_ids = i32_tensor({B, T}, {0, 1, 2, 3, 9, 0});
  expect_error(
      [&] { ops::embeddings_forward(cpu_context(), out, bad_ids, types, word, position, token_type); },
      ErrorCode::INVALID_ARGUMENT, {"embeddings_forward", "input_ids[4] = 9"});
  Tensor bad_types = i32_tensor({B, T}, {0, 0, 2, 0, 0, 0});
  expect_error(
      [&] { ops::embeddings_forward(cpu_context(), out, ids, bad_types, word, position, token_type); },
      ErrorCode::INVALID_ARGUMENT, {"embeddings_forward", "token_type_ids[2] = 2"});
  Tensor dword = Tensor::zeros(DType::F32, {V, C}), dposition = Tensor::zeros(DType::F32, {P, C}),
         dtoken_type = Tensor::zeros(DType::F32, {TV, C + 1});
  expect_error(
      [&] { ops::embeddings_backward(cpu_context(), dword, dposition, dtoken_type, out, ids, types); },
      ErrorCode::INVALID_ARGUMENT, {"embeddings_backward", "dtoken_type", "[2, 6]"});
  Tensor dtoken_type_ok = Tensor::zeros(DType::F32, {TV, C});
  expect_error(
      [&] { ops::embeddings_backward(cpu_context(), dword, dposition, dtoken_type_ok, out, bad_ids, types); },
      ErrorCode::INVALID_ARGUMENT, {"embeddings_backward", "input_ids[4] = 9"});
}

}  // namespace
}  // namespace nlpf::test
