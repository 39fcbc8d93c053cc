// adamw_update on CUDA against the CPU op: a parameter of odd size through several steps, with and without
// weight decay, from non-zero moments; both run the same f32 operations (the GPU without fused
// multiply-adds), so they agree within 1e-6 relative after every step. The multi-tensor form (a few launches
// for a whole model) gives the single-tensor kernel's bits on every parameter, across launch boundaries.
#include "ops/adamw.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

constexpr Tolerance kTight{1e-6, 1e-7};

class AdamWCuda : public CudaOpTest {};

TEST_F(AdamWCuda, StepsMatchCpu) {
  std::mt19937 rng(901);
  const int64_t N = 1031;
  ops::AdamWConfig config;
  config.lr = 2e-3;
  config.weight_decay = 0.05;
  for (const ops::WeightDecay decay : {ops::WeightDecay::APPLY, ops::WeightDecay::SKIP}) {
    SCOPED_TRACE(decay == ops::WeightDecay::APPLY ? "decay" : "no decay");
    Tensor param = random_tensor(rng, {N}), m = random_tensor(rng, {N}, -0.1, 0.1),
           v = random_tensor(rng, {N}, 0, 0.01);
    Tensor param_d = device(param), m_d = device(m), v_d = device(v);
    for (int64_t step = 1; step <= 5; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      const Tensor grad = random_tensor(rng, {N}, -2, 2);
      ops::adamw_update(cpu_context(), param, grad, m, v, config, step, decay);
      ops::adamw_update(gpu(), param_d, device(grad), m_d, v_d, config, step, decay);
      EXPECT_TRUE(all_close(values(param_d), to_double(param), kTight));
      EXPECT_TRUE(all_close(values(m_d), to_double(m), kTight));
      EXPECT_TRUE(all_close(values(v_d), to_double(v), kTight));
    }
  }
}

TEST_F(AdamWCuda, LargeStepAndTinyTensor) {
  std::mt19937 rng(902);
  for (const int64_t N : {int64_t{1}, int64_t{3}}) {
    Tensor param = random_tensor(rng, {N}), m = Tensor::zeros(DType::F32, {N}),
           v = Tensor::zeros(DType::F32, {N});
    Tensor param_d = device(param), m_d = device(m), v_d = device(v);
    const Tensor grad = random_tensor(rng, {N});
    ops::adamw_update(cpu_context(), param, grad, m, v, ops::AdamWConfig{}, 1000, ops::WeightDecay::APPLY);
    ops::adamw_update(gpu(), param_d, device(grad), m_d, v_d, ops::AdamWConfig{}, 1000,
                      ops::WeightDecay::APPLY);
    EXPECT_TRUE(all_close(values(param_d), to_double(param), kTight));
  }
}

TEST_F(AdamWCuda, MultiTensorStepEqualsSingleTensorSteps) {
  std::mt19937 rng(903);
  std::uniform_int_distribution<int64_t> size(1, 3000);
  ops::AdamWConfig config;
  config.lr = 3e-3;
  config.weight_decay = 0.01;
  constexpr int kParameters = 130;  // three launches of up to 48
  std::vector<ops::AdamWParameter> single, multi, cpu;
  for (int i = 0; i < kParameters; ++i) {
    const int64_t N = i == 7 ? 300007 : size(rng);
    const ops::WeightDecay decay = i % 3 == 0 ? ops::WeightDecay::SKIP : ops::WeightDecay::APPLY;
    const Tensor param = random_tensor(rng, {N}), m = random_tensor(rng, {N}, -0.1, 0.1),
                 v = random_tensor(rng, {N}, 0, 0.01);
    single.push_back({device(param), Tensor(), device(m), device(v), decay});
    multi.push_back({device(param), Tensor(), device(m), device(v), decay});
    cpu.push_back({host_copy(param), Tensor(), host_copy(m), host_copy(v), decay});
  }
  for (int64_t step = 1; step <= 3; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    for (int i = 0; i < kParameters; ++i) {
      const Tensor grad = random_tensor(rng, {single[i].param.numel()}, -2, 2);
      single[i].grad = device(grad);
      multi[i].grad = device(grad);
      cpu[i].grad = grad;
      ops::adamw_update(gpu(), single[i].param, single[i].grad, single[i].m, single[i].v, config, step,
                        single[i].decay);
    }
    ops::adamw_update(gpu(), multi, config, step);
    ops::adamw_update(cpu_context(), cpu, config, step);
    for (int i = 0; i < kParameters; ++i) {
      SCOPED_TRACE("parameter " + std::to_string(i));
      EXPECT_TRUE(bit_identical(to_host(gpu(), multi[i].param), to_host(gpu(), single[i].param)));
      EXPECT_TRUE(bit_identical(to_host(gpu(), multi[i].m), to_host(gpu(), single[i].m)));
      EXPECT_TRUE(bit_identical(to_host(gpu(), multi[i].v), to_host(gpu(), single[i].v)));
      EXPECT_TRUE(all_close(values(multi[i].param), to_double(cpu[i].param), kTight));
    }
  }
}

TEST_F(AdamWCuda, DeviceStepScalarsWithGradScaleMatchCpu) {
  // The captured step's form: scalars (learning rate, bias corrections, the clip factor as grad_scale) read
  // from device memory by the kernel, against the CPU's step-scalar form on the same scalars.
  std::mt19937 rng(904);
  ops::AdamWConfig config;
  config.weight_decay = 0.01;
  const int64_t N = 300007;
  const Tensor param = random_tensor(rng, {N}), m = random_tensor(rng, {N}, -0.1, 0.1),
               v = random_tensor(rng, {N}, 0, 0.01), grad = random_tensor(rng, {N}, -2, 2);
  std::vector<ops::AdamWParameter> on_gpu{{device(param), device(grad), device(m), device(v)}};
  std::vector<ops::AdamWParameter> on_cpu{{host_copy(param), host_copy(grad), host_copy(m), host_copy(v)}};
  ops::AdamWStepScalars scalars{};
  const double lr = 3e-4;
  scalars.learning_rate = lr;
  scalars.step = 3;
  scalars.decay = static_cast<float>(1.0 - lr * config.weight_decay);
  scalars.step_size = static_cast<float>(lr / (1.0 - std::pow(config.beta1, 3.0)));
  scalars.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(config.beta2, 3.0)));
  scalars.grad_scale = 0.37f;
  static_assert(sizeof(ops::AdamWStepScalars) % sizeof(int64_t) == 0);
  Tensor host_bytes = Tensor::empty(DType::I64, {static_cast<int64_t>(sizeof scalars / sizeof(int64_t))});
  std::memcpy(host_bytes.data<int64_t>(), &scalars, sizeof scalars);
  Tensor device_bytes = poisoned(host_bytes.shape(), DType::I64);
  copy_tensor(gpu(), device_bytes, host_bytes);
  ops::adamw_update(gpu(), on_gpu, config,
                    reinterpret_cast<const ops::AdamWStepScalars*>(device_bytes.data<int64_t>()));
  ops::adamw_update(cpu_context(), on_cpu, config, &scalars);
  EXPECT_TRUE(all_close(values(on_gpu[0].param), to_double(on_cpu[0].param), kTight));
  EXPECT_TRUE(all_close(values(on_gpu[0].m), to_double(on_cpu[0].m), kTight));
  EXPECT_TRUE(all_close(values(on_gpu[0].v), to_double(on_cpu[0].v), kTight));
  // grad_scale was applied: the first moment moved by 0.1 * 0.37 g, not 0.1 g.
  const std::vector<double> m_gpu = values(on_gpu[0].m), m0 = to_double(m), g = to_double(grad);
  EXPECT_NEAR(m_gpu[0], m0[0] + 0.1 * (0.37 * g[0] - m0[0]), 1e-6);
}

}  // namespace
}  // namespace nlpf::test
