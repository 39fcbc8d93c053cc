// decide_step on CUDA: optimizer_step_impl.h's body in one thread, so the step's scalars never leave the
// device.
#include "ops/optimizer_step_cuda.h"

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "ops/optimizer_step_impl.h"

namespace nlpf::cuda {
namespace {

__global__ void decide_step_kernel(ops::OptimizerStepState* state, ops::StepRecord* record,
                                   const ops::OptimizerStepConstants constants, int64_t step) {
  ops::detail::decide_step(*state, *record, constants, step);
}

}  // namespace

void decide_step(ExecutionContext& base, ops::OptimizerStepState* state, ops::StepRecord* record,
                 const ops::OptimizerStepConstants& constants, int64_t step) {
  CudaContext& ctx = cuda_context(base);
  decide_step_kernel<<<1, 1, 0, ctx.stream()>>>(state, record, constants, step);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
