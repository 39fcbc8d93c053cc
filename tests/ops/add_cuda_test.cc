// add_forward on CUDA against the CPU op: odd sizes, views off the 16-byte vector (the scalar path), and out
// aliasing a or b. Skipped where the build has no CUDA or no GPU is visible.
#include "ops/add.h"

#include <string>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

class AddCuda : public CudaOpTest {};

TEST_F(AddCuda, MatchesCpuOnOddSizesAlignedOrNotAndInPlace) {
  std::mt19937 rng(11);
  for (const int64_t N : {int64_t{1}, int64_t{3}, int64_t{5 * 13 * 37}, int64_t{4 * 100003 + 3}}) {
    for (const int64_t offset : {0, 1}) {
      for (const int alias : {0, 1, 2}) {  // out separate, out = a, out = b
        SCOPED_TRACE("N=" + std::to_string(N) + " offset=" + std::to_string(offset) +
                     " alias=" + std::to_string(alias));
        const Tensor a = random_tensor(rng, {N}, -2, 2), b = random_tensor(rng, {N}, -2, 2);
        Tensor ref = Tensor::empty(DType::F32, {N});
        ops::add_forward(cpu_context(), ref, a, b);
        Tensor a_gpu = device(a, offset), b_gpu = device(b, offset);
        Tensor out = alias == 1 ? a_gpu : alias == 2 ? b_gpu : poisoned({N}, offset);
        ops::add_forward(gpu(), out, a_gpu, b_gpu);
        EXPECT_TRUE(all_close(values(out), to_double(ref), kCudaF32));
      }
    }
  }
}

}  // namespace
}  // namespace nlpf::test
