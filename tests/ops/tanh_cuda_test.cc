// tanh_forward / tanh_backward on CUDA against the CPU ops: odd sizes, inputs over [-5, 5] (saturated and
// linear parts), views off the 16-byte vector, and in place (out = x, dx = dout). Skipped where the build
// has no CUDA or no GPU is visible.
#include "ops/tanh.h"

#include <string>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

class TanhCuda : public CudaOpTest {};

TEST_F(TanhCuda, ForwardAndBackwardMatchCpuAlsoInPlace) {
  std::mt19937 rng(14);
  for (const int64_t N : {int64_t{1}, int64_t{5 * 37}, int64_t{4 * 100003 + 3}}) {
    for (const int64_t offset : {0, 1}) {
      for (const bool in_place : {false, true}) {
        SCOPED_TRACE("N=" + std::to_string(N) + " offset=" + std::to_string(offset) +
                     (in_place ? " in place" : ""));
        const Tensor x = random_tensor(rng, {N}, -5, 5), dout = random_tensor(rng, {N}, -2, 2);
        Tensor out_ref = Tensor::empty(DType::F32, {N}), dx_ref = Tensor::empty(DType::F32, {N});
        ops::tanh_forward(cpu_context(), out_ref, x);
        ops::tanh_backward(cpu_context(), dx_ref, dout, out_ref);

        Tensor x_gpu = device(x, offset), dout_gpu = device(dout, offset);
        Tensor out = in_place ? x_gpu : poisoned({N}, offset);
        ops::tanh_forward(gpu(), out, x_gpu);
        EXPECT_TRUE(all_close(values(out), to_double(out_ref), kCudaF32));
        // The backward reads the CPU's forward output, so it is compared on identical inputs.
        Tensor out_saved = device(out_ref, offset);
        Tensor dx = in_place ? dout_gpu : poisoned({N}, offset);
        ops::tanh_backward(gpu(), dx, dout_gpu, out_saved);
        EXPECT_TRUE(all_close(values(dx), to_double(dx_ref), kCudaF32));
      }
    }
  }
}

}  // namespace
}  // namespace nlpf::test
