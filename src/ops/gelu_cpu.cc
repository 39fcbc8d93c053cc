// CPU reference of the exact (erf) GELU, templated over float and double. Activation gradients overwrite (=).
// Float uses the vectorisable erf_approx / exp_approx (vector_math.h, within 4e-7); double, the library's.
#include <cmath>
#include <numbers>

#include "backend/cpu/vector_math.h"
#include "ops/gelu.h"

namespace nlpf::cpu {

// out [N] = 0.5 x (1 + erf(x / sqrt 2)); x [N].
template <typename Real>
void gelu_forward(Real* out, const Real* x, int64_t N) {
  const Real inv_sqrt2 = Real(1) / std::sqrt(Real(2));
#pragma omp parallel for simd
  for (int64_t i = 0; i < N; ++i) out[i] = Real(0.5) * x[i] * (Real(1) + erf_approx(x[i] * inv_sqrt2));
}

// dx [N] (=) = dout (Phi(x) + x phi(x)), with Phi the standard normal CDF and phi its density.
template <typename Real>
void gelu_backward(Real* dx, const Real* dout, const Real* x, int64_t N) {
  const Real inv_sqrt2 = Real(1) / std::sqrt(Real(2));
  const Real inv_sqrt_2pi = Real(1) / std::sqrt(Real(2) * std::numbers::pi_v<Real>);
#pragma omp parallel for simd
  for (int64_t i = 0; i < N; ++i) {
    const Real cdf = Real(0.5) * (Real(1) + erf_approx(x[i] * inv_sqrt2));
    const Real pdf = inv_sqrt_2pi * exp_approx(Real(-0.5) * x[i] * x[i]);
    dx[i] = dout[i] * (cdf + x[i] * pdf);
  }
}

template void gelu_forward<float>(float*, const float*, int64_t);
template void gelu_forward<double>(double*, const double*, int64_t);
template void gelu_backward<float>(float*, const float*, const float*, int64_t);
template void gelu_backward<double>(double*, const double*, const double*, int64_t);

}  // namespace nlpf::cpu
