// CPU reference of LayerNorm over the last dimension (see layer_norm.h), templated over float and double.
// The float forward keeps its statistics in float with vectorised (omp simd) two-pass sums, whose lane-wise
// partial sums err far below the 1e-4 golden tolerance; the backward and the double kernels sum in double.
// Parameter gradients accumulate (+=), activation gradients overwrite (=).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "backend/cpu/vector_math.h"
#include "ops/layer_norm_cpu.h"

namespace nlpf::cpu {

namespace {

// Rows per parallel task of the float forward.
constexpr int64_t kRowBlock = 32;

// Rows [n0, n1) of the float forward, one clone per vector unit (NLPF_CPU_CLONES). A double accumulator
// would not vectorise next to float data (and halves the lanes), and this forward runs twice per encoder
// layer on every row. The reduction order is fixed by the build and the CPU, so results reproduce.
NLPF_CPU_CLONES void layer_norm_rows_float(float* out, float* mean, float* rstd, const float* x,
                                           const float* weight, const float* bias, double eps, int64_t n0,
                                           int64_t n1, int64_t C) {
  const float inv_c = 1.0f / static_cast<float>(C);
  for (int64_t n = n0; n < n1; ++n) {
    const float* __restrict xn = x + n * C;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < C; ++c) sum += xn[c];
    const float m = sum * inv_c;
    // Centred second pass: E[x^2] - m^2 would cancel catastrophically in float.
    float sq = 0;
#pragma omp simd reduction(+ : sq)
    for (int64_t c = 0; c < C; ++c) sq += (xn[c] - m) * (xn[c] - m);
    const auto s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(sq * inv_c) + eps));
    float* __restrict on = out + n * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) on[c] = (xn[c] - m) * s * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

void layer_norm_forward_float(float* out, float* mean, float* rstd, const float* x, const float* weight,
                              const float* bias, double eps, int64_t N, int64_t C) {
  const int64_t blocks = (N + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    layer_norm_rows_float(out, mean, rstd, x, weight, bias, eps, b * kRowBlock,
                          std::min(N, (b + 1) * kRowBlock), C);
  }
}

}  // namespace

// out [N,C], mean [N], rstd [N], x [N,C], weight [C], bias [C].
template <typename Real>
void layer_norm_forward(Real* out, Real* mean, Real* rstd, const Real* x, const Real* weight,
                        const Real* bias, double eps, int64_t N, int64_t C) {
  if constexpr (std::is_same_v<Real, float>) {
    layer_norm_forward_float(out, mean, rstd, x, weight, bias, eps, N, C);
    return;
  }
#pragma omp parallel for
  for (int64_t n = 0; n < N; ++n) {
    const Real* xn = x + n * C;
    double sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += xn[c];
    const double m = sum / C;
    // Two passes: the centred sum of squares does not cancel catastrophically like E[x^2] - m^2.
    double sq = 0;
    for (int64_t c = 0; c < C; ++c) sq += (xn[c] - m) * (xn[c] - m);
    const double s = 1.0 / std::sqrt(sq / C + eps);  // biased variance, as torch.nn.LayerNorm
    Real* on = out + n * C;
    for (int64_t c = 0; c < C; ++c) on[c] = static_cast<Real>((xn[c] - m) * s * weight[c] + bias[c]);
    mean[n] = static_cast<Real>(m);
    rstd[n] = static_cast<Real>(s);
  }
}

// dx [N,C] (=), dweight [C] (+=), dbias [C] (+=); dout, x [N,C]; weight [C]; mean, rstd [N].
// With xhat = (x - mean) rstd and g = dout * weight:
//   dx = rstd (g - mean_C(g) - xhat mean_C(g xhat)),  dweight = sum_N dout xhat,  dbias = sum_N dout.
template <typename Real>
void layer_norm_backward(Real* dx, Real* dweight, Real* dbias, const Real* dout, const Real* x,
                         const Real* weight, const Real* mean, const Real* rstd, int64_t N, int64_t C) {
#pragma omp parallel for
  for (int64_t n = 0; n < N; ++n) {
    const Real* xn = x + n * C;
    const Real* dn = dout + n * C;
    const double m = mean[n], s = rstd[n];
    double g_sum = 0, gx_sum = 0;
    for (int64_t c = 0; c < C; ++c) {
      const double g = static_cast<double>(dn[c]) * weight[c];
      g_sum += g;
      gx_sum += g * (xn[c] - m) * s;
    }
    const double g_mean = g_sum / C, gx_mean = gx_sum / C;
    Real* dxn = dx + n * C;
    for (int64_t c = 0; c < C; ++c) {
      const double g = static_cast<double>(dn[c]) * weight[c];
      dxn[c] = static_cast<Real>(s * (g - g_mean - (xn[c] - m) * s * gx_mean));
    }
  }
  // Parameter gradients reduce over rows: threads split the channels, so sums run in row order
  // (deterministic) without races.
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t c0 = C * id / threads, c1 = C * (id + 1) / threads;
    for (int64_t c = c0; c < c1; ++c) {
      double dw = 0, db = 0;
      for (int64_t n = 0; n < N; ++n) {
        const double d = dout[n * C + c];
        dw += d * (x[n * C + c] - static_cast<double>(mean[n])) * rstd[n];
        db += d;
      }
      dweight[c] += static_cast<Real>(dw);
      dbias[c] += static_cast<Real>(db);
    }
  }
}

template void layer_norm_forward<float>(float*, float*, float*, const float*, const float*, const float*,
                                        double, int64_t, int64_t);
template void layer_norm_forward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, double, int64_t, int64_t);
template void layer_norm_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                         const float*, const float*, int64_t, int64_t);
template void layer_norm_backward<double>(double*, double*, double*, const double*, const double*,
                                          const double*, const double*, const double*, int64_t, int64_t);

}  // namespace nlpf::cpu
