// CPU reference of softmax cross-entropy with mean reduction, templated over float and double.
// The loss uses log-sum-exp of the logits (not log of a rounded probability). Activation gradients
// overwrite (=).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/cross_entropy_cpu.h"

namespace nlpf::cpu {
namespace {

void check_labels(const char* op, const int32_t* labels, int64_t B, int64_t NL) {
  for (int64_t b = 0; b < B; ++b) {
    NLPF_CHECK(labels[b] >= 0 && labels[b] < NL, ErrorCode::INVALID_ARGUMENT, op, ": labels[", b,
               "] = ", labels[b], " is outside [0, ", NL, ")");
  }
}

}  // namespace

// probs [B,NL] (saved); logits [B,NL]; labels [B]. Returns the mean loss. B is a batch of examples (small),
// so this runs serially, which also fixes the summation order of the loss.
template <typename Real>
double cross_entropy_forward(Real* probs, const Real* logits, const int32_t* labels, int64_t B, int64_t NL) {
  check_labels("cross_entropy_forward", labels, B, NL);
  double loss = 0;
  for (int64_t b = 0; b < B; ++b) {
    const Real* z = logits + b * NL;
    const double max_z = *std::max_element(z, z + NL);
    double sum = 0;
    for (int64_t j = 0; j < NL; ++j) sum += std::exp(z[j] - max_z);
    for (int64_t j = 0; j < NL; ++j) probs[b * NL + j] = static_cast<Real>(std::exp(z[j] - max_z) / sum);
    loss += max_z + std::log(sum) - z[labels[b]];
  }
  return loss / B;
}

// dlogits [B,NL] (=) = dloss (probs - onehot(labels)) / B.
template <typename Real>
void cross_entropy_backward(Real* dlogits, const Real* probs, const int32_t* labels, double dloss, int64_t B,
                            int64_t NL) {
  check_labels("cross_entropy_backward", labels, B, NL);
  const double scale = dloss / B;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t j = 0; j < NL; ++j) {
      const double target = j == labels[b] ? 1.0 : 0.0;
      dlogits[b * NL + j] = static_cast<Real>(scale * (probs[b * NL + j] - target));
    }
  }
}

template double cross_entropy_forward<float>(float*, const float*, const int32_t*, int64_t, int64_t);
template double cross_entropy_forward<double>(double*, const double*, const int32_t*, int64_t, int64_t);
template void cross_entropy_backward<float>(float*, const float*, const int32_t*, double, int64_t, int64_t);
template void cross_entropy_backward<double>(double*, const double*, const int32_t*, double, int64_t,
                                             int64_t);

}  // namespace nlpf::cpu
