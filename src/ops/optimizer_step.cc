// decide_step: device dispatch (optimizer_step_cpu.cc, optimizer_step_cuda.cu).
#include "ops/optimizer_step.h"

#include "backend/device.h"
#include "ops/op_util.h"
#include "ops/optimizer_step_cpu.h"
#include "ops/optimizer_step_cuda.h"

namespace nlpf::ops {

void decide_step(ExecutionContext& ctx, OptimizerStepState* state, StepRecord* record,
                 const OptimizerStepConstants& constants, int64_t step) {
  NLPF_CHECK(state != nullptr && record != nullptr && constants.bias_correction1 != nullptr &&
                 constants.bias_correction2 != nullptr,
             ErrorCode::INVALID_ARGUMENT, "decide_step: null state, record or bias-correction table");
  if (ctx.device().type == DeviceType::CPU) {
    cpu::decide_step(state, record, constants, step);
    return;
  }
  if constexpr (kCudaBuilt) {
    cuda::decide_step(ctx, state, record, constants, step);
    return;
  }
  detail::throw_no_cuda_kernel("decide_step");
}

}  // namespace nlpf::ops
