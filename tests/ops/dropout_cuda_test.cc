// dropout on CUDA against the CPU op: the Philox keep mask bit for bit for several (seed, offset, p),
// offsets off the 4-element Philox block and a mask longer than one grid pass; forward and backward on odd
// sizes, off the 16-byte vector, and in place. Skipped where the build has no CUDA or no GPU is visible.
#include "ops/dropout.h"

#include <random>
#include <string>

#include "ops/add.h"
#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

class DropoutCuda : public CudaOpTest {
 protected:
  // A step index in host memory (the CPU reference's draw) and the same in device memory (the kernels').
  struct Step {
    Tensor host, on_device;
  };
  Step step_in_both_memories(int64_t value) {
    Step step{Tensor::empty(DType::I64, {1}), poisoned({1}, DType::I64)};
    step.host.data<int64_t>()[0] = value;
    copy_tensor(gpu(), step.on_device, step.host);
    return step;
  }
};

TEST_F(DropoutCuda, MaskIsTheCpuMaskBitForBit) {
  struct Case {
    uint64_t seed, offset;
    double p;
    int64_t N;
  };
  const Case cases[] = {
      {0, 0, 0.1, 1},
      {1234, 0, 0.1, 5 * 13 * 37},
      {1234, 1, 0.1, 5 * 13 * 37},
      {1234, 2, 0.5, 3},
      {1234, 3, 0.5, 6},
      {77, 5, 0.9, 1001},
      {77, 4000000001ull, 0.5, 11},
      {(uint64_t{1} << 40) + 7, (uint64_t{1} << 33) + 3, 0.25, 4097},
      {99, 7, 0.0, 130},                  // p = 0 keeps everything
      {99, 6, 0.999, 2000},               // keeps almost nothing
      {5, 4 * 123457 + 1, 0.1, 3000001},  // more Philox blocks than one pass of the grid
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("seed=" + std::to_string(c.seed) + " offset=" + std::to_string(c.offset) +
                 " p=" + std::to_string(c.p) + " N=" + std::to_string(c.N));
    Tensor ref = Tensor::empty(DType::F32, {c.N});
    ops::dropout_mask(cpu_context(), ref, c.p, c.seed, c.offset);
    Tensor keep = poisoned({c.N}, c.offset % 2);
    ops::dropout_mask(gpu(), keep, c.p, c.seed, c.offset);
    EXPECT_TRUE(bit_identical(to_host(gpu(), keep), ref));
  }
}

TEST_F(DropoutCuda, StepReadFromDeviceMemoryGivesTheCpuMask) {
  // The captured training step's form: the kernel reads the step from device memory, and the mask equals
  // the CPU's at offset + step * stride; an update of that memory between launches moves the next mask.
  const uint64_t offset = 4 * 1025, stride = uint64_t{1} << 42;
  const int64_t N = 4099;
  Tensor step = poisoned({1}, DType::I64);
  for (const int64_t s : {int64_t{0}, int64_t{7}, int64_t{4194303}}) {
    SCOPED_TRACE("step " + std::to_string(s));
    Tensor host_step = Tensor::empty(DType::I64, {1});
    host_step.data<int64_t>()[0] = s;
    copy_tensor(gpu(), step, host_step);
    Tensor ref = Tensor::empty(DType::F32, {N});
    ops::dropout_mask(cpu_context(), ref, 0.1, 1234, offset + static_cast<uint64_t>(s) * stride);
    Tensor keep = poisoned({N});
    ops::dropout_mask(gpu(), keep, 0.1, 1234, offset, step.data<int64_t>(), stride);
    EXPECT_TRUE(bit_identical(to_host(gpu(), keep), ref));
  }
}

TEST_F(DropoutCuda, DrawnDropoutIsTheCpuDropoutBitForBit) {
  // The kernel that draws the mask where it applies it (no mask in memory) against the CPU reference (the
  // mask drawn, then applied): bit for bit, with the offset off a Philox block, with the step read from
  // device memory, in place, and over more elements than one pass of the grid.
  std::mt19937 rng(15);
  Step step = step_in_both_memories(9);
  const uint64_t stride = uint64_t{1} << 42;
  for (const int64_t N : {int64_t{1}, int64_t{5 * 13 * 37}, int64_t{3000001}}) {
    for (const bool device_step : {false, true}) {
      SCOPED_TRACE("N=" + std::to_string(N) + (device_step ? " step in device memory" : " offset 7"));
      const Tensor x = random_tensor(rng, {N}, -2, 2);
      const ops::DropoutDraw cpu_draw = device_step
                                            ? ops::DropoutDraw{31, 8, step.host.data<int64_t>(), stride}
                                            : ops::DropoutDraw{31, 7, nullptr, 0};
      const ops::DropoutDraw gpu_draw = device_step
                                            ? ops::DropoutDraw{31, 8, step.on_device.data<int64_t>(), stride}
                                            : ops::DropoutDraw{31, 7, nullptr, 0};
      Tensor ref = Tensor::empty(DType::F32, {N});
      ops::dropout_forward(cpu_context(), ref, x, 0.1, cpu_draw);
      Tensor out = poisoned({N});
      ops::dropout_forward(gpu(), out, device(x), 0.1, gpu_draw);
      EXPECT_TRUE(bit_identical(to_host(gpu(), out), ref));
      Tensor in_place = device(x);
      ops::dropout_backward(gpu(), in_place, in_place, 0.1, gpu_draw);
      EXPECT_TRUE(bit_identical(to_host(gpu(), in_place), ref));
    }
  }
}

TEST_F(DropoutCuda, DrawnDropoutWithResidualIsDropoutThenAddBitForBit) {
  // dropout_add_forward's one pass (the residual added after the rounded product, no fma) against the CPU's
  // dropout_forward then add_forward: bit for bit, with the step in device memory, out of place and in place
  // on x and on the residual.
  std::mt19937 rng(16);
  Step step = step_in_both_memories(5);
  const uint64_t stride = uint64_t{1} << 42;
  for (const int64_t N : {int64_t{1}, int64_t{5 * 13 * 37}, int64_t{3000001}}) {
    SCOPED_TRACE("N=" + std::to_string(N));
    const Tensor x = random_tensor(rng, {N}, -2, 2), residual = random_tensor(rng, {N}, -2, 2);
    Tensor ref = Tensor::empty(DType::F32, {N});
    ops::dropout_forward(cpu_context(), ref, x, 0.1,
                         ops::DropoutDraw{31, 8, step.host.data<int64_t>(), stride});
    ops::add_forward(cpu_context(), ref, ref, residual);
    Tensor cpu_fused = Tensor::empty(DType::F32, {N});
    ops::dropout_add_forward(cpu_context(), cpu_fused, x, residual, 0.1,
                             ops::DropoutDraw{31, 8, step.host.data<int64_t>(), stride});
    EXPECT_TRUE(bit_identical(cpu_fused, ref));
    const ops::DropoutDraw draw{31, 8, step.on_device.data<int64_t>(), stride};
    Tensor out = poisoned({N});
    ops::dropout_add_forward(gpu(), out, device(x), device(residual), 0.1, draw);
    EXPECT_TRUE(bit_identical(to_host(gpu(), out), ref));
    Tensor on_x = device(x);
    ops::dropout_add_forward(gpu(), on_x, on_x, device(residual), 0.1, draw);
    EXPECT_TRUE(bit_identical(to_host(gpu(), on_x), ref));
    Tensor on_residual = device(residual);
    ops::dropout_add_forward(gpu(), on_residual, device(x), on_residual, 0.1, draw);
    EXPECT_TRUE(bit_identical(to_host(gpu(), on_residual), ref));
  }
}

TEST_F(DropoutCuda, ForwardAndBackwardMatchCpuAlsoInPlace) {
  std::mt19937 rng(12);
  for (const int64_t N : {int64_t{3}, int64_t{5 * 13 * 37}, int64_t{4 * 100003 + 1}}) {
    for (const int64_t offset : {0, 1}) {
      for (const bool in_place : {false, true}) {
        SCOPED_TRACE("N=" + std::to_string(N) + " offset=" + std::to_string(offset) +
                     (in_place ? " in place" : ""));
        const double p = 0.1;
        const Tensor x = random_tensor(rng, {N}, -2, 2), dout = random_tensor(rng, {N}, -2, 2);
        Tensor keep = Tensor::empty(DType::F32, {N});
        ops::dropout_mask(cpu_context(), keep, p, 4321, 17);
        Tensor out_ref = Tensor::empty(DType::F32, {N}), dx_ref = Tensor::empty(DType::F32, {N});
        ops::dropout_forward(cpu_context(), out_ref, x, keep, p);
        ops::dropout_backward(cpu_context(), dx_ref, dout, keep, p);

        Tensor x_gpu = device(x, offset), dout_gpu = device(dout, offset), keep_gpu = device(keep, offset);
        Tensor out = in_place ? x_gpu : poisoned({N}, offset);
        Tensor dx = in_place ? dout_gpu : poisoned({N}, offset);
        ops::dropout_forward(gpu(), out, x_gpu, keep_gpu, p);
        ops::dropout_backward(gpu(), dx, dout_gpu, keep_gpu, p);
        EXPECT_TRUE(all_close(values(out), to_double(out_ref), kCudaF32));
        EXPECT_TRUE(all_close(values(dx), to_double(dx_ref), kCudaF32));
      }
    }
  }
}

}  // namespace
}  // namespace nlpf::test
