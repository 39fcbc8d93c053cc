// CUDA kernel of ops/optimizer_step.h's decide_step (optimizer_step_cuda.cu), declared without CUDA headers.
#pragma once

#include "ops/optimizer_step.h"

namespace nlpf::cuda {

// state and record in ctx's device memory; one thread, queued on ctx's stream.
void decide_step(ExecutionContext& ctx, ops::OptimizerStepState* state, ops::StepRecord* record,
                 const ops::OptimizerStepConstants& constants, int64_t step);

}  // namespace nlpf::cuda
