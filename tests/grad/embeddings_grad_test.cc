// Finite-difference check in double of embeddings_backward for the three tables (tiny odd shapes, repeated
// ids so the scatter-add sums several rows); table gradients must accumulate onto their previous values.
#include "grad/grad_check.h"
#include "ops/embeddings.h"
#include "ops/embeddings_cpu.h"

namespace nlpf::test {
namespace {

TEST(EmbeddingsGrad, MatchesFiniteDifferences) {
  const int64_t B = 2, T = 3, C = 5, V = 7, P = 4, TV = 2;
  std::mt19937 rng(11);
  std::vector<double> word = random_vector(rng, V * C), position = random_vector(rng, P * C),
                      token_type = random_vector(rng, TV * C), r = random_vector(rng, B * T * C);
  const std::vector<int32_t> ids = {3, 6, 3, 0, 3, 5}, types = {0, 1, 1, 0, 0, 1};
  auto loss = [&] {
    std::vector<double> out(B * T * C);
    cpu::embeddings_forward(out.data(), ids.data(), types.data(), word.data(), position.data(),
                            token_type.data(), B, T, C, V, P, TV);
    return dot(out, r);
  };
  const std::vector<double> dword0 = random_vector(rng, V * C), dposition0 = random_vector(rng, P * C),
                            dtoken_type0 = random_vector(rng, TV * C);
  std::vector<double> dword = dword0, dposition = dposition0, dtoken_type = dtoken_type0;
  cpu::embeddings_backward(dword.data(), dposition.data(), dtoken_type.data(), r.data(), ids.data(),
                           types.data(), nullptr, B, T, C, V, TV);
  expect_gradient("word", word, subtract(dword, dword0), loss);
  expect_gradient("position", position, subtract(dposition, dposition0), loss);
  expect_gradient("token_type", token_type, subtract(dtoken_type, dtoken_type0), loss);
}

}  // namespace
}  // namespace nlpf::test
