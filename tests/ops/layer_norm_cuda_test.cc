// layer_norm_forward / layer_norm_backward (f32, training) on CUDA against the CPU ops: odd sizes that take
// the warp kernel (C = 768, 72, ...) and the block kernel (C = 37, 2304), row counts over several partial-sum
// chunks; dweight and dbias start non-zero (they accumulate), outputs start as NaN (every element written),
// and the backward gives the same bits twice (no atomics). The fused dropout-residual-LayerNorm forward
// against the ops it replaces, bit for bit. Skipped where the build has no CUDA or no GPU.
#include "ops/layer_norm.h"

#include <cstring>
#include <string>

#include "ops/add.h"
#include "ops/cuda_op_test_util.h"
#include "ops/dropout.h"

namespace nlpf::test {
namespace {

constexpr double kEps = 1e-12;  // BERT's layer_norm_eps

class LayerNormCuda : public CudaOpTest {
 protected:
  // A training step's index in device memory, where a captured step's dropout reads it.
  Tensor device_step(int64_t value) {
    Tensor host = Tensor::empty(DType::I64, {1});
    host.data<int64_t>()[0] = value;
    return to_device(gpu(), host);
  }
};

TEST_F(LayerNormCuda, ForwardAndBackwardMatchCpuAndAccumulate) {
  std::mt19937 rng(16);
  struct Size {
    int64_t N, C;
  };
  // The backward's dx kernel keeps rows of C <= 1024, a multiple of 4, in registers (4 to 32 values a lane:
  // 72 and 40 take 4, 200 8, 384 12, 500 16, 768 24, 1000 32) and walks odd (37) or wider rows (2304) in
  // memory.
  for (const Size s : {Size{5 * 13, 37}, Size{5 * 13, 768}, Size{3, 2304}, Size{1000, 72}, Size{20011, 40},
                       Size{77, 200}, Size{77, 384}, Size{77, 500}, Size{77, 1000}}) {
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

namespace nlpf::test {
namespace {

// The fused training forward after a residual block (dropout, residual add and LayerNorm in one pass where
// the rows fit the warp kernel) against the two ops it replaces on the same GPU, bit for bit: sum, out, mean,
// rstd and the 16-bit copy. C = 384 and 768 take the fused kernel (3 and 6 float4 per lane), C = 37 the
// two-kernel fallback; with the drawn dropout (the step read from device memory, as a captured step reads it)
// and without (p = 0: a plain add); x in place in sum, as the model calls it.
TEST_F(LayerNormCuda, DropoutAddLayerNormEqualsTheTwoOpsBitForBit) {
  std::mt19937 rng(1501);
  const Tensor step = device_step(3);
  const ops::DropoutDraw draw{77, 16, step.data<int64_t>(), uint64_t{1} << 42};
  for (const int64_t C : {int64_t{384}, int64_t{768}, int64_t{37}}) {
    for (const double p : {0.1, 0.0}) {
      for (const bool with_twin : {true, false}) {
        SCOPED_TRACE("C=" + std::to_string(C) + " p=" + std::to_string(p) + (with_twin ? " bf16 copy" : ""));
        const int64_t N = 45;
        const Tensor x = random_tensor(rng, {N, C}, -3, 3), residual = device(random_tensor(rng, {N, C})),
                     w = device(random_tensor(rng, {C})), b = device(random_tensor(rng, {C}));
        // The two ops.
        Tensor sum_ref = device(x), out_ref = poisoned({N, C}), mean_ref = poisoned({N}),
               rstd_ref = poisoned({N}), twin_ref = poisoned({N, C}, DType::BF16);
        if (p > 0) {
          ops::dropout_add_forward(gpu(), sum_ref, sum_ref, residual, p, draw);
        } else {
          ops::add_forward(gpu(), sum_ref, sum_ref, residual);
        }
        ops::layer_norm_forward(gpu(), out_ref, mean_ref, rstd_ref, sum_ref, w, b, 1e-12,
                                with_twin ? &twin_ref : nullptr);
        // The fused op, x in place in sum.
        Tensor sum = device(x), out = poisoned({N, C}), mean = poisoned({N}), rstd = poisoned({N}),
               twin = poisoned({N, C}, DType::BF16);
        ops::dropout_add_layer_norm_forward(gpu(), sum, out, mean, rstd, sum, residual, w, b, 1e-12, p, draw,
                                            with_twin ? &twin : nullptr);
        EXPECT_TRUE(bit_identical(to_host(gpu(), sum), to_host(gpu(), sum_ref)));
        EXPECT_TRUE(bit_identical(to_host(gpu(), out), to_host(gpu(), out_ref)));
        EXPECT_TRUE(bit_identical(to_host(gpu(), mean), to_host(gpu(), mean_ref)));
        EXPECT_TRUE(bit_identical(to_host(gpu(), rstd), to_host(gpu(), rstd_ref)));
        if (with_twin) {
          const Tensor got = to_host(gpu(), twin), expected = to_host(gpu(), twin_ref);
          EXPECT_EQ(0, std::memcmp(got.raw_data(), expected.raw_data(), got.nbytes()));
        }
      }
    }
  }
}

// The backward's copy of dx for the next GEMM (dropout's backward and/or a 16-bit rounding, in the same pass)
// against the ops it replaces on the same GPU, bit for bit; dx and the parameter gradients as without the
// copy.
TEST_F(LayerNormCuda, BackwardGradientCopyEqualsTheDropoutOpBitForBit) {
  std::mt19937 rng(1502);
  const Tensor step = device_step(2);
  const ops::DropoutDraw draw{91, 32, step.data<int64_t>(), uint64_t{1} << 42};
  for (const int64_t C : {int64_t{384}, int64_t{37}}) {
    const int64_t N = 33;
    const Tensor x = device(random_tensor(rng, {N, C}, -3, 3)), w = device(random_tensor(rng, {C})),
                 b = device(random_tensor(rng, {C})), dout = device(random_tensor(rng, {N, C}));
    Tensor y = poisoned({N, C}), mean = poisoned({N}), rstd = poisoned({N});
    ops::layer_norm_forward(gpu(), y, mean, rstd, x, w, b, kEps);
    for (const DType dtype : {DType::F32, DType::BF16, DType::F16}) {
      for (const double p : {0.1, 0.0}) {
        SCOPED_TRACE("C=" + std::to_string(C) + " " + dtype_name(dtype) + " p=" + std::to_string(p));
        Tensor dx_ref = poisoned({N, C}), dw_ref = device(Tensor::zeros(DType::F32, {C})),
               db_ref = device(Tensor::zeros(DType::F32, {C}));
        ops::layer_norm_backward(gpu(), dx_ref, dw_ref, db_ref, dout, x, w, mean, rstd);
        Tensor dx = poisoned({N, C}), dw = device(Tensor::zeros(DType::F32, {C})),
               db = device(Tensor::zeros(DType::F32, {C})), copy = poisoned({N, C}, dtype);
        const ops::LayerNormGradientCopy gradient_copy{&copy, p, draw};
        ops::layer_norm_backward(gpu(), dx, dw, db, dout, x, w, mean, rstd, &gradient_copy);
        EXPECT_TRUE(bit_identical(to_host(gpu(), dx), to_host(gpu(), dx_ref)));
        EXPECT_TRUE(bit_identical(to_host(gpu(), dw), to_host(gpu(), dw_ref)));
        EXPECT_TRUE(bit_identical(to_host(gpu(), db), to_host(gpu(), db_ref)));
        Tensor expected = poisoned({N, C}, dtype);
        if (p > 0) {
          ops::dropout_backward(gpu(), expected, dx_ref, p, draw);
        } else {
          expected = to_device(gpu(), to_host(gpu(), dx_ref).to(dtype));
        }
        const Tensor got = to_host(gpu(), copy), want = to_host(gpu(), expected);
        EXPECT_EQ(0, std::memcmp(got.raw_data(), want.raw_data(), got.nbytes()));
      }
    }
  }
}

}  // namespace
}  // namespace nlpf::test
