// CPU reference of the linear layer (see linear.h) through BLAS GEMM, templated over float and double.
// Parameter gradients accumulate (+=, GEMM with beta = 1), activation gradients overwrite (=, beta = 0).
#include "backend/cpu/blas.h"
#include "ops/linear.h"

namespace nlpf::cpu {

// y [N,OC] = x [N,C] weight[OC,C]^T + bias [OC].
template <typename Real>
void linear_forward(Real* y, const Real* x, const Real* weight, const Real* bias, int64_t N, int64_t C,
                    int64_t OC) {
  // Rows start as the bias, and the GEMM adds onto them (beta = 1): one pass over y instead of two.
#pragma omp parallel for
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t o = 0; o < OC; ++o) y[n * OC + o] = bias[o];
  }
  gemm<Real>(Transpose::NO, Transpose::YES, N, OC, C, Real(1), x, C, weight, C, Real(1), y, OC);
}

// dx [N,C] (=), dweight [OC,C] (+=), dbias [OC] (+=); dy [N,OC], x [N,C], weight [OC,C].
template <typename Real>
void linear_backward(Real* dx, Real* dweight, Real* dbias, const Real* dy, const Real* x, const Real* weight,
                     int64_t N, int64_t C, int64_t OC) {
  gemm<Real>(Transpose::NO, Transpose::NO, N, C, OC, Real(1), dy, OC, weight, C, Real(0), dx, C);
  gemm<Real>(Transpose::YES, Transpose::NO, OC, C, N, Real(1), dy, OC, x, C, Real(1), dweight, C);
  // Column sums accumulate in double, each column in row order (deterministic for any thread count).
#pragma omp parallel for
  for (int64_t o = 0; o < OC; ++o) {
    double sum = 0;
    for (int64_t n = 0; n < N; ++n) sum += dy[n * OC + o];
    dbias[o] += static_cast<Real>(sum);
  }
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int64_t, int64_t,
                                    int64_t);
template void linear_forward<double>(double*, const double*, const double*, const double*, int64_t, int64_t,
                                     int64_t);
template void linear_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                     int64_t, int64_t, int64_t);
template void linear_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                      int64_t, int64_t, int64_t);

}  // namespace nlpf::cpu
