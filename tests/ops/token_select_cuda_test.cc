// token_select_forward / token_select_backward on CUDA against the CPU ops: odd sizes, the first, a middle
// and the last token, and every element of dx written (dx starts as NaN). Skipped where the build has no CUDA
// or no GPU is visible.
#include "ops/token_select.h"

#include <string>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

class TokenSelectCuda : public CudaOpTest {};

TEST_F(TokenSelectCuda, ForwardAndBackwardMatchCpu) {
  std::mt19937 rng(15);
  struct Size {
    int64_t B, T, C;
  };
  for (const Size s : {Size{5, 13, 37}, Size{1, 1, 3}, Size{3, 7, 300}}) {
    for (const int64_t index : {int64_t{0}, s.T / 2, s.T - 1}) {
      SCOPED_TRACE("B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) + " C=" + std::to_string(s.C) +
                   " index=" + std::to_string(index));
      const Tensor x = random_tensor(rng, {s.B, s.T, s.C}), dout = random_tensor(rng, {s.B, s.C});
      Tensor out_ref = Tensor::empty(DType::F32, {s.B, s.C}),
             dx_ref = Tensor::empty(DType::F32, {s.B, s.T, s.C});
      ops::token_select_forward(cpu_context(), out_ref, x, index);
      ops::token_select_backward(cpu_context(), dx_ref, dout, index);

      Tensor out = poisoned({s.B, s.C}), dx = poisoned({s.B, s.T, s.C});
      ops::token_select_forward(gpu(), out, device(x), index);
      ops::token_select_backward(gpu(), dx, device(dout), index);
      EXPECT_TRUE(all_close(values(out), to_double(out_ref), kCudaF32));
      EXPECT_TRUE(all_close(values(dx), to_double(dx_ref), kCudaF32));
    }
  }
}

}  // namespace
}  // namespace nlpf::test
