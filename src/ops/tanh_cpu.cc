// CPU reference of tanh and its backward from the saved output, templated over float and double.
// Activation gradients overwrite (=).
#include <cmath>

#include "ops/tanh_cpu.h"

namespace nlpf::cpu {

// out [N] = tanh(x [N]).
template <typename Real>
void tanh_forward(Real* out, const Real* x, int64_t N) {
#pragma omp parallel for
  for (int64_t i = 0; i < N; ++i) out[i] = std::tanh(x[i]);
}

// dx [N] (=) = dout (1 - out^2).
template <typename Real>
void tanh_backward(Real* dx, const Real* dout, const Real* out, int64_t N) {
#pragma omp parallel for
  for (int64_t i = 0; i < N; ++i) dx[i] = dout[i] * (Real(1) - out[i] * out[i]);
}

template void tanh_forward<float>(float*, const float*, int64_t);
template void tanh_forward<double>(double*, const double*, int64_t);
template void tanh_backward<float>(float*, const float*, const float*, int64_t);
template void tanh_backward<double>(double*, const double*, const double*, int64_t);

}  // namespace nlpf::cpu
