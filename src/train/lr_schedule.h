// The learning-rate schedule of the reference recipe: Hugging Face's get_linear_schedule_with_warmup, with
// the warm-up length of TrainingArguments.get_warmup_steps (ceil(warmup_ratio * total_steps)). Steps count
// from 0: the learning rate of step s is the one update s uses (LambdaLR's value after s scheduler steps).
#pragma once

#include <cstdint>

namespace nlpf {

// ceil(total_steps * warmup_ratio), multiplied in that order as transformers does (0.06 * 100 is 6 there).
int64_t warmup_steps_for(double warmup_ratio, int64_t total_steps);

// peak * s / max(1, warmup) while s < warmup, then peak * max(0, (total - s) / max(1, total - warmup)):
// lr_lambda of get_linear_schedule_with_warmup, in double as Python computes it.
double linear_warmup_decay_lr(double peak_lr, int64_t step, int64_t warmup_steps, int64_t total_steps);

}  // namespace nlpf
