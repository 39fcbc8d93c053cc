// CPU twin of ops/optimizer_step.h's decide_step on host memory. Only src/ops/optimizer_step*.cc and tests
// include this.
#pragma once

#include "ops/optimizer_step.h"

namespace nlpf::cpu {

void decide_step(ops::OptimizerStepState* state, ops::StepRecord* record,
                 const ops::OptimizerStepConstants& constants, int64_t step);

}  // namespace nlpf::cpu
