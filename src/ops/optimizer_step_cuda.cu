// decide_step on CUDA: optimizer_step_impl.h's body in one thread, so the step's scalars never leave the
// device.
#include "ops/optimizer_step_cuda.h"

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_context.h"
#include "ops/optimizer_step_impl.h"

namespace nlpf::cuda {
namespace {

__global__ void decide_step_kernel(ops::OptimizerStepState* state, ops::StepRecord* ring, int64_t ring_steps,
                                   const ops::OptimizerStepConstants constants) {
  ops::detail::decide_step(*state, ring, ring_steps, constants);
}

}  // namespace

void decide_step(ExecutionContext& base, ops::OptimizerStepState* state, ops::StepRecord* ring,
                 int64_t ring_steps, const ops::OptimizerStepConstants& constants) {
  CudaContext& ctx = cuda_context(base);
  decide_step_kernel<<<1, 1, 0, ctx.stream()>>>(state, ring, ring_steps, constants);
  NLPF_CUDA_CHECK_LAUNCH();
}

}  // namespace nlpf::cuda
