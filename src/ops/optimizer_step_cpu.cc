// CPU twin of decide_step: the shared body of optimizer_step_impl.h on host memory.
#include "ops/optimizer_step_cpu.h"

#include "ops/optimizer_step_impl.h"

namespace nlpf::cpu {

void decide_step(ops::OptimizerStepState* state, ops::StepRecord* record,
                 const ops::OptimizerStepConstants& constants, int64_t step) {
  ops::detail::decide_step(*state, *record, constants, step);
}

}  // namespace nlpf::cpu
