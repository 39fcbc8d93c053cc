// CPU reference of the exact (erf) GELU, templated over float and double. Activation gradients overwrite (=).
// Float uses the vectorisable erf_approx / exp_approx (vector_math.h, within 4e-7) in chunks compiled for the
// CPU's widest vector unit (NLPF_CPU_CLONES); double, the library's.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")  // vector_math.h: lets GCC vectorise the clamps and selects
#endif

#include <algorithm>
#include <cmath>
#include <numbers>
#include <type_traits>

#include "backend/cpu/vector_math.h"
#include "ops/gelu_cpu.h"

namespace nlpf::cpu {
namespace {

// Elements per parallel task: a few hundred tasks for an [N,I] activation, each long enough for the vector
// loop to dominate.
constexpr int64_t kChunk = 16384;

template <typename Real>
void gelu_forward_span(Real* out, const Real* x, int64_t n) {
  const Real inv_sqrt2 = Real(1) / std::sqrt(Real(2));
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = Real(0.5) * x[i] * (Real(1) + erf_approx(x[i] * inv_sqrt2));
}

template <typename Real>
void gelu_backward_span(Real* dx, const Real* dout, const Real* x, int64_t n) {
  const Real inv_sqrt2 = Real(1) / std::sqrt(Real(2));
  const Real inv_sqrt_2pi = Real(1) / std::sqrt(Real(2) * std::numbers::pi_v<Real>);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const Real cdf = Real(0.5) * (Real(1) + erf_approx(x[i] * inv_sqrt2));
    const Real pdf = inv_sqrt_2pi * exp_approx(Real(-0.5) * x[i] * x[i]);
    dx[i] = dout[i] * (cdf + x[i] * pdf);
  }
}

// The float spans, one clone per vector unit. out and x may be the same buffer (EVAL's GELU runs in place),
// which the element-wise loop allows.
NLPF_CPU_CLONES void gelu_forward_float(float* out, const float* x, int64_t n) {
  gelu_forward_span<float>(out, x, n);
}
NLPF_CPU_CLONES void gelu_backward_float(float* dx, const float* dout, const float* x, int64_t n) {
  gelu_backward_span<float>(dx, dout, x, n);
}

}  // namespace

// out [N] = 0.5 x (1 + erf(x / sqrt 2)); x [N].
template <typename Real>
void gelu_forward(Real* out, const Real* x, int64_t N) {
  const int64_t chunks = (N + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i0 = c * kChunk, n = std::min(N, i0 + kChunk) - i0;
    if constexpr (std::is_same_v<Real, float>) {
      gelu_forward_float(out + i0, x + i0, n);
    } else {
      gelu_forward_span<Real>(out + i0, x + i0, n);
    }
  }
}

// dx [N] (=) = dout (Phi(x) + x phi(x)), with Phi the standard normal CDF and phi its density.
template <typename Real>
void gelu_backward(Real* dx, const Real* dout, const Real* x, int64_t N) {
  const int64_t chunks = (N + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i0 = c * kChunk, n = std::min(N, i0 + kChunk) - i0;
    if constexpr (std::is_same_v<Real, float>) {
      gelu_backward_float(dx + i0, dout + i0, x + i0, n);
    } else {
      gelu_backward_span<Real>(dx + i0, dout + i0, x + i0, n);
    }
  }
}

template void gelu_forward<float>(float*, const float*, int64_t);
template void gelu_forward<double>(double*, const double*, int64_t);
template void gelu_backward<float>(float*, const float*, const float*, int64_t);
template void gelu_backward<double>(double*, const double*, const double*, int64_t);

}  // namespace nlpf::cpu
