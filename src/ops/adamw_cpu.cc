// CPU reference of the AdamW step, templated over float and double. Element math runs in Real with the
// scalars rounded to Real, as torch's CPU kernels do for a float32 parameter.
#include <cmath>

#include "ops/adamw_cpu.h"

namespace nlpf::cpu {

// param [N], m [N], v [N] updated in place from grad [N] (see adamw.h for the formula and its order).
template <typename Real>
void adamw_update(Real* param, const Real* grad, Real* m, Real* v, int64_t N, double lr, double beta1,
                  double beta2, double eps, double weight_decay, int64_t step, Real grad_scale) {
  const Real decay = static_cast<Real>(1.0 - lr * weight_decay);
  const Real one_minus_beta1 = static_cast<Real>(1.0 - beta1);
  const Real beta2_r = static_cast<Real>(beta2), one_minus_beta2 = static_cast<Real>(1.0 - beta2);
  const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  const Real step_size = static_cast<Real>(lr / bias_correction1);
  const Real bias_correction2_sqrt = static_cast<Real>(std::sqrt(bias_correction2));
  const Real eps_r = static_cast<Real>(eps);
#pragma omp parallel for
  for (int64_t i = 0; i < N; ++i) {
    const Real g = grad[i] * grad_scale;
    Real p = param[i] * decay;
    const Real m_i = m[i] + one_minus_beta1 * (g - m[i]);  // torch's lerp_(grad, 1 - beta1)
    const Real v_i = v[i] * beta2_r + one_minus_beta2 * g * g;
    p -= step_size * (m_i / (std::sqrt(v_i) / bias_correction2_sqrt + eps_r));
    param[i] = p;
    m[i] = m_i;
    v[i] = v_i;
  }
}

template void adamw_update<float>(float*, const float*, float*, float*, int64_t, double, double, double,
                                  double, double, int64_t, float);
template void adamw_update<double>(double*, const double*, double*, double*, int64_t, double, double, double,
                                   double, double, int64_t, double);

}  // namespace nlpf::cpu
