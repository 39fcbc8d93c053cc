// Linear warm-up then linear decay to 0, transcribed from transformers.optimization._get_linear_schedule_
// with_warmup_lr_lambda so that every learning rate equals PyTorch's bit for bit (both in double).
#include "train/lr_schedule.h"

#include <cmath>

#include "core/error.h"
#include "ops/optimizer_step_impl.h"

namespace nlpf {

int64_t warmup_steps_for(double warmup_ratio, int64_t total_steps) {
  NLPF_CHECK(warmup_ratio >= 0.0 && warmup_ratio <= 1.0, ErrorCode::INVALID_ARGUMENT,
             "--warmup-ratio: expected a value in [0, 1], got ", warmup_ratio);
  NLPF_CHECK(total_steps >= 0, ErrorCode::INVALID_ARGUMENT, "total training steps must be >= 0, got ",
             total_steps);
  return static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * warmup_ratio));
}

double linear_warmup_decay_lr(double peak_lr, int64_t step, int64_t warmup_steps, int64_t total_steps) {
  // One formula for the host and the device's step decision (ops/optimizer_step_impl.h).
  return ops::detail::scheduled_learning_rate(peak_lr, step, warmup_steps, total_steps);
}

}  // namespace nlpf
