// CUDA kernel of ops/optimizer_step.h's decide_step (optimizer_step_cuda.cu), declared without CUDA headers.
#pragma once

#include "ops/optimizer_step.h"

namespace nlpf::cuda {

// state and ring in ctx's device memory; one thread, queued on ctx's stream.
void decide_step(ExecutionContext& ctx, ops::OptimizerStepState* state, ops::StepRecord* ring,
                 int64_t ring_steps, const ops::OptimizerStepConstants& constants);

}  // namespace nlpf::cuda
