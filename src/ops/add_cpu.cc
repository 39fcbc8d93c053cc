// CPU reference of the elementwise sum, templated over float and double (out may alias an input).
#include "ops/add_cpu.h"

namespace nlpf::cpu {

// out [N] = a [N] + b [N].
template <typename Real>
void add_forward(Real* out, const Real* a, const Real* b, int64_t N) {
#pragma omp parallel for
  for (int64_t i = 0; i < N; ++i) out[i] = a[i] + b[i];
}

template void add_forward<float>(float*, const float*, const float*, int64_t);
template void add_forward<double>(double*, const double*, const double*, int64_t);

}  // namespace nlpf::cpu
