// Global gradient-norm clipping, torch.nn.utils.clip_grad_norm_ (L2, error_if_nonfinite=False): the total
// norm over all gradients, then every gradient scaled by min(1, max_norm / (norm + 1e-6)).
#pragma once

#include <cstdint>
#include <span>

#include "backend/context.h"
#include "core/tensor.h"

namespace nlpf::ops {

// Returns the norm before clipping (squares summed in double). The gradients (f32, any shapes, one device)
// are scaled in place when max_norm / (norm + 1e-6) < 1. A non-finite norm leaves them untouched, so the
// caller can skip the step (torch would multiply them by 0 and turn inf into NaN). With loss scaling the
// gradients arrive multiplied by the loss scale: `inverse_scale` (1 / scale, a power of two) unscales the
// norm and, in the same pass as the clipping, the gradients (torch's GradScaler.unscale_ then
// clip_grad_norm_).
double clip_grad_norm(ExecutionContext& ctx, std::span<Tensor> grads, double max_norm,
                      double inverse_scale = 1.0);

// Who multiplies the gradients by the clip factor: IN_PLACE, clip_grad_norm itself (a pass over every
// gradient); BY_READER, whoever reads them next, from *factor (the optimizer's AdamW, through its step
// scalars' grad_scale: the same f32 product without a pass of its own), the gradients left as they are.
enum class ClipScaling { IN_PLACE, BY_READER };

// The same without the host: the loss scale is read from `loss_scale`, the norm written to `norm` and the
// factor the gradients are multiplied by to `factor` (1 when the norm is not finite or nothing needs
// clipping; all three doubles in ctx's memory: device memory on CUDA, where nothing waits for the host).
// inverse_scale = 1 / *loss_scale and the factor are the host form's operations, so the results are the same
// bits; a non-finite norm leaves the gradients untouched.
void clip_grad_norm(ExecutionContext& ctx, std::span<Tensor> grads, double max_norm, const double* loss_scale,
                    double* norm, double* factor, ClipScaling scaling = ClipScaling::IN_PLACE);

}  // namespace nlpf::ops
