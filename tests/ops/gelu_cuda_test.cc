// gelu_forward / gelu_backward (f32) on CUDA against the CPU ops: odd sizes, inputs over [-6, 6] (both tails
// of erf), views off the 16-byte vector, and in place (out = x, dx = dout). Skipped where the build has no
// CUDA or no GPU is visible.
#include "ops/gelu.h"

#include <string>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

class GeluCuda : public CudaOpTest {};

TEST_F(GeluCuda, ForwardAndBackwardMatchCpuAlsoInPlace) {
  std::mt19937 rng(13);
  for (const int64_t N : {int64_t{1}, int64_t{5 * 13 * 37}, int64_t{4 * 100003 + 2}}) {
    for (const int64_t offset : {0, 1}) {
      for (const bool in_place : {false, true}) {
        SCOPED_TRACE("N=" + std::to_string(N) + " offset=" + std::to_string(offset) +
                     (in_place ? " in place" : ""));
        const Tensor x = random_tensor(rng, {N}, -6, 6), dout = random_tensor(rng, {N}, -2, 2);
        Tensor out_ref = Tensor::empty(DType::F32, {N}), dx_ref = Tensor::empty(DType::F32, {N});
        ops::gelu_forward(cpu_context(), out_ref, x);
        ops::gelu_backward(cpu_context(), dx_ref, dout, x);

        // Backward first: in place, the forward overwrites x.
        Tensor x_gpu = device(x, offset), dout_gpu = device(dout, offset);
        Tensor dx = in_place ? dout_gpu : poisoned({N}, offset);
        ops::gelu_backward(gpu(), dx, dout_gpu, x_gpu);
        Tensor out = in_place ? x_gpu : poisoned({N}, offset);
        ops::gelu_forward(gpu(), out, x_gpu);
        EXPECT_TRUE(all_close(values(out), to_double(out_ref), kCudaF32));
        EXPECT_TRUE(all_close(values(dx), to_double(dx_ref), kCudaF32));
      }
    }
  }
}

}  // namespace
}  // namespace nlpf::test
