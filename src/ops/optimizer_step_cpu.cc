// CPU twin of decide_step: the shared body of optimizer_step_impl.h on host memory.
#include "ops/optimizer_step_cpu.h"

#include "ops/optimizer_step_impl.h"

namespace nlpf::cpu {

void decide_step(ops::OptimizerStepState* state, ops::StepRecord* ring, int64_t ring_steps,
                 const ops::OptimizerStepConstants& constants) {
  ops::detail::decide_step(*state, ring, ring_steps, constants);
}

}  // namespace nlpf::cpu
