// decide_step: device dispatch (optimizer_step_cpu.cc, optimizer_step_cuda.cu).
#include "ops/optimizer_step.h"

#include "backend/device.h"
#include "ops/op_util.h"
#include "ops/optimizer_step_cpu.h"
#include "ops/optimizer_step_cuda.h"

namespace nlpf::ops {

void decide_step(ExecutionContext& ctx, OptimizerStepState* state, StepRecord* ring, int64_t ring_steps,
                 const OptimizerStepConstants& constants) {
  NLPF_CHECK(state != nullptr && ring != nullptr && ring_steps > 0 && constants.bias_correction1 != nullptr &&
                 constants.bias_correction2 != nullptr,
             ErrorCode::INVALID_ARGUMENT, "decide_step: null state, ring or bias-correction table, or ring of ",
             ring_steps, " steps");
  if (ctx.device().type == DeviceType::CPU) {
    cpu::decide_step(state, ring, ring_steps, constants);
    return;
  }
  if constexpr (kCudaBuilt) {
    cuda::decide_step(ctx, state, ring, ring_steps, constants);
    return;
  }
  detail::throw_no_cuda_kernel("decide_step");
}

}  // namespace nlpf::ops
