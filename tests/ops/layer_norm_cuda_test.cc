// layer_norm_forward / layer_norm_backward (f32, training) on CUDA against the CPU ops: odd sizes that take
// the warp kernel (C = 768, 72) and the block kernel (C = 37, 2304), row counts over several partial-sum
// chunks; dweight and dbias start non-zero (they accumulate), outputs start as NaN (every element written),
// and the backward gives the same bits twice (no atomics). Skipped where the build has no CUDA or no GPU.
#include "ops/layer_norm.h"

#include <string>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

constexpr double kEps = 1e-12;  // BERT's layer_norm_eps

class LayerNormCuda : public CudaOpTest {};

TEST_F(LayerNormCuda, ForwardAndBackwardMatchCpuAndAccumulate) {
  std::mt19937 rng(16);
  struct Size {
    int64_t N, C;
  };
  for (const Size s : {Size{5 * 13, 37}, Size{5 * 13, 768}, Size{3, 2304}, Size{1000, 72}, Size{20011, 40}}) {
    SCOPED_TRACE("N=" + std::to_string(s.N) + " C=" + std::to_string(s.C));
    // Rows centred near 0.5 (the mean matters) with an eps that is negligible, as in BERT.
    const Tensor x = random_tensor(rng, {s.N, s.C}, -1.5, 2.5), dout = random_tensor(rng, {s.N, s.C});
    const Tensor weight = random_tensor(rng, {s.C}, 0.5, 1.5), bias = random_tensor(rng, {s.C}, -0.5, 0.5);
    const Tensor dweight0 = random_tensor(rng, {s.C}), dbias0 = random_tensor(rng, {s.C});

    Tensor out_ref = Tensor::empty(DType::F32, {s.N, s.C}), mean_ref = Tensor::empty(DType::F32, {s.N}),
           rstd_ref = Tensor::empty(DType::F32, {s.N});
    ops::layer_norm_forward(cpu_context(), out_ref, mean_ref, rstd_ref, x, weight, bias, kEps);
    Tensor dx_ref = Tensor::empty(DType::F32, {s.N, s.C});
    Tensor dweight_ref = dweight0.clone(), dbias_ref = dbias0.clone();
    ops::layer_norm_backward(cpu_context(), dx_ref, dweight_ref, dbias_ref, dout, x, weight, mean_ref,
                             rstd_ref);

    const Tensor x_gpu = device(x), weight_gpu = device(weight), bias_gpu = device(bias);
    Tensor out = poisoned({s.N, s.C}), mean = poisoned({s.N}), rstd = poisoned({s.N});
    ops::layer_norm_forward(gpu(), out, mean, rstd, x_gpu, weight_gpu, bias_gpu, kEps);
    EXPECT_TRUE(all_close(values(out), to_double(out_ref), kCudaF32));
    EXPECT_TRUE(all_close(values(mean), to_double(mean_ref), kCudaF32));
    EXPECT_TRUE(all_close(values(rstd), to_double(rstd_ref), kCudaF32));

    // The backward from the CPU's statistics: both sum in double, so they agree to the float rounding.
    const Tensor dout_gpu = device(dout), mean_gpu = device(mean_ref), rstd_gpu = device(rstd_ref);
    Tensor dx = poisoned({s.N, s.C}), dweight = device(dweight0), dbias = device(dbias0);
    ops::layer_norm_backward(gpu(), dx, dweight, dbias, dout_gpu, x_gpu, weight_gpu, mean_gpu, rstd_gpu);
    EXPECT_TRUE(all_close(values(dx), to_double(dx_ref), kCudaF32));
    EXPECT_TRUE(all_close(values(dweight), to_double(dweight_ref), kCudaF32));
    EXPECT_TRUE(all_close(values(dbias), to_double(dbias_ref), kCudaF32));

    // Reproducible: a second run from the same starting gradients gives the same bits.
    Tensor dx2 = poisoned({s.N, s.C}), dweight2 = device(dweight0), dbias2 = device(dbias0);
    ops::layer_norm_backward(gpu(), dx2, dweight2, dbias2, dout_gpu, x_gpu, weight_gpu, mean_gpu, rstd_gpu);
    EXPECT_TRUE(bit_identical(to_host(gpu(), dx2), to_host(gpu(), dx)));
    EXPECT_TRUE(bit_identical(to_host(gpu(), dweight2), to_host(gpu(), dweight)));
    EXPECT_TRUE(bit_identical(to_host(gpu(), dbias2), to_host(gpu(), dbias)));
  }
}

}  // namespace
}  // namespace nlpf::test
