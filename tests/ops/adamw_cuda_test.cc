// adamw_update on CUDA against the CPU op: a parameter of odd size through several steps, with and without
// weight decay, from non-zero moments; both run the same f32 operations (the GPU without fused
// multiply-adds), so they agree within 1e-6 relative after every step.
#include "ops/adamw.h"

#include <string>

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

}  // namespace
}  // namespace nlpf::test
