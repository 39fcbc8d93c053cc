// embeddings_forward / embeddings_backward on CUDA against the CPU ops: odd sizes, ids that repeat (a small
// vocabulary, and one id filling most of a long batch: runs longer than the short-run kernel's load batch and
// than kLongRun, which the long-run kernel stages in passes of 256 rows; one token type over exactly 256
// rows, a run that ends with a full pass), gradients that start non-zero (they accumulate). The backward adds
// each table row's dout rows in row order like the CPU, so both directions are compared bit for bit as well
// as within tolerance, with and without a padding mask whose padded rows add nothing. An out-of-range id
// gives its row NaN (the device cannot throw). Skipped where the build has no CUDA or no GPU is visible.
#include "ops/embeddings.h"

#include <cmath>
#include <string>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

class EmbeddingsCuda : public CudaOpTest {};

struct Size {
  int64_t B, T, C, V, TV;
  bool one_id;  // most ids the same (a long run of one table row)
};

TEST_F(EmbeddingsCuda, ForwardAndBackwardMatchCpuBitForBitAndAccumulate) {
  std::mt19937 rng(17);
  for (const Size s :
       {Size{5, 13, 37, 50, 2, false}, Size{5, 13, 37, 3, 3, false}, Size{3, 130, 768, 97, 2, false},
        Size{5, 130, 33, 40, 1, true}, Size{4, 64, 40, 3, 1, false}, Size{1, 1, 5, 1, 1, false}}) {
    SCOPED_TRACE("B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " C=" + std::to_string(s.C) +
                 " V=" + std::to_string(s.V) + " TV=" + std::to_string(s.TV) + (s.one_id ? " one id" : ""));
    const int64_t P = s.T + 3;
    Tensor ids = random_ids(rng, {s.B, s.T}, static_cast<int32_t>(s.V));
    if (s.one_id) {
      for (int64_t i = 0; i < ids.numel(); ++i) {
        if (i % 7 != 3) ids.data<int32_t>()[i] = 0;
      }
    }
    const Tensor types = random_ids(rng, {s.B, s.T}, static_cast<int32_t>(s.TV));
    const Tensor word = random_tensor(rng, {s.V, s.C}), position = random_tensor(rng, {P, s.C}),
                 token_type = random_tensor(rng, {s.TV, s.C});
    const Tensor dout = random_tensor(rng, {s.B, s.T, s.C});
    const Tensor dword0 = random_tensor(rng, {s.V, s.C}), dposition0 = random_tensor(rng, {P, s.C}),
                 dtoken_type0 = random_tensor(rng, {s.TV, s.C});

    Tensor out_ref = Tensor::empty(DType::F32, {s.B, s.T, s.C});
    ops::embeddings_forward(cpu_context(), out_ref, ids, types, word, position, token_type);
    Tensor dword_ref = dword0.clone(), dposition_ref = dposition0.clone(),
           dtoken_type_ref = dtoken_type0.clone();
    ops::embeddings_backward(cpu_context(), dword_ref, dposition_ref, dtoken_type_ref, dout, ids, types);
    // A padding mask: each sequence's tail after a random length of at least 1, sequence 0 unpadded, and
    // sequence 1 with its token 0 padded too (whose rows all add).
    Tensor mask = Tensor::zeros(DType::I32, {s.B, s.T});
    for (int64_t b = 0; b < s.B; ++b) {
      const int64_t length = b == 0 ? s.T : std::uniform_int_distribution<int64_t>(1, s.T)(rng);
      for (int64_t t = b == 1 ? 1 : 0; t < length; ++t) mask.data<int32_t>()[b * s.T + t] = 1;
    }
    Tensor mword_ref = dword0.clone(), mposition_ref = dposition0.clone(),
           mtoken_type_ref = dtoken_type0.clone();
    ops::embeddings_backward(cpu_context(), mword_ref, mposition_ref, mtoken_type_ref, dout, ids, types,
                             &mask);

    const Tensor ids_gpu = to_device(gpu(), ids), types_gpu = to_device(gpu(), types);
    Tensor out = poisoned({s.B, s.T, s.C});
    ops::embeddings_forward(gpu(), out, ids_gpu, types_gpu, device(word), device(position),
                            device(token_type));
    EXPECT_TRUE(all_close(values(out), to_double(out_ref), kCudaF32));
    EXPECT_TRUE(bit_identical(to_host(gpu(), out), out_ref));

    Tensor dword = device(dword0), dposition = device(dposition0), dtoken_type = device(dtoken_type0);
    ops::embeddings_backward(gpu(), dword, dposition, dtoken_type, device(dout), ids_gpu, types_gpu);
    EXPECT_TRUE(all_close(values(dword), to_double(dword_ref), kCudaF32));
    EXPECT_TRUE(all_close(values(dposition), to_double(dposition_ref), kCudaF32));
    EXPECT_TRUE(all_close(values(dtoken_type), to_double(dtoken_type_ref), kCudaF32));
    EXPECT_TRUE(bit_identical(to_host(gpu(), dword), dword_ref));
    EXPECT_TRUE(bit_identical(to_host(gpu(), dposition), dposition_ref));
    EXPECT_TRUE(bit_identical(to_host(gpu(), dtoken_type), dtoken_type_ref));

    Tensor mword = device(dword0), mposition = device(dposition0), mtoken_type = device(dtoken_type0);
    const Tensor mask_gpu = to_device(gpu(), mask);
    ops::embeddings_backward(gpu(), mword, mposition, mtoken_type, device(dout), ids_gpu, types_gpu,
                             &mask_gpu);
    EXPECT_TRUE(bit_identical(to_host(gpu(), mword), mword_ref));
    EXPECT_TRUE(bit_identical(to_host(gpu(), mposition), mposition_ref));
    EXPECT_TRUE(bit_identical(to_host(gpu(), mtoken_type), mtoken_type_ref));
  }
}

TEST_F(EmbeddingsCuda, OutOfRangeIdGivesItsRowNan) {
  std::mt19937 rng(18);
  const int64_t B = 2, T = 3, C = 5, V = 4, TV = 2;
  Tensor ids = i32_tensor({B, T}, {0, 1, 2, 3, 4, 1}), types = i32_tensor({B, T}, {0, 1, 0, -1, 0, 1});
  const Tensor word = random_tensor(rng, {V, C}), position = random_tensor(rng, {T, C}),
               token_type = random_tensor(rng, {TV, C});
  Tensor out = poisoned({B, T, C});
  ops::embeddings_forward(gpu(), out, to_device(gpu(), ids), to_device(gpu(), types), device(word),
                          device(position), device(token_type));
  const std::vector<double> got = values(out);
  for (int64_t row = 0; row < B * T; ++row) {
    const bool bad = row == 3 || row == 4;  // token type -1, word id 4 = V
    for (int64_t c = 0; c < C; ++c) {
      EXPECT_EQ(std::isnan(got[row * C + c]), bad) << "row " << row << " column " << c;
    }
  }
}

}  // namespace
}  // namespace nlpf::test
