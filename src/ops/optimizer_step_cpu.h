// CPU twin of ops/optimizer_step.h's decide_step on host memory. Only src/ops/optimizer_step*.cc and tests
// include this.
#pragma once

#include "ops/optimizer_step.h"

namespace nlpf::cpu {

void decide_step(ops::OptimizerStepState* state, ops::StepRecord* ring, int64_t ring_steps,
                 const ops::OptimizerStepConstants& constants);

}  // namespace nlpf::cpu
