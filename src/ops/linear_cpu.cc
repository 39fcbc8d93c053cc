// CPU reference of the linear layer (see linear.h) through BLAS GEMM, templated over float and double.
// Parameter gradients accumulate (+=, GEMM with beta = 1), activation gradients overwrite (=, beta = 0).
#include <omp.h>

#include <algorithm>
#include <vector>

#include "backend/cpu/blas.h"
#include "core/fp8.h"
#include "ops/linear_cpu.h"

namespace nlpf::cpu {

// y [N,OC] = x [N,C] weight[OC,C]^T + bias [OC].
template <typename Real>
void linear_forward(Real* y, const Real* x, const Real* weight, const Real* bias, int64_t N, int64_t C,
                    int64_t OC) {
  // Each tile of y starts as the bias and the GEMM adds onto it (beta = 1) while the tile is still in cache:
  // one pass over y instead of two, and no separate parallel region.
  parallel_tiles(N, OC, C, [&](int64_t n0, int64_t n1, int64_t o0, int64_t o1) {
    for (int64_t n = n0; n < n1; ++n) std::copy(bias + o0, bias + o1, y + n * OC + o0);
    gemm_serial<Real>(Transpose::NO, Transpose::YES, n1 - n0, o1 - o0, C, Real(1), x + n0 * C, C,
                      weight + o0 * C, C, Real(1), y + n0 * OC + o0, OC);
  });
}

// dx [N,C] (= or, accumulate_dx, +=), dweight [OC,C] (+=), dbias [OC] (+=); dy [N,OC], x [N,C], weight
// [OC,C].
template <typename Real>
void linear_backward(Real* dx, Real* dweight, Real* dbias, const Real* dy, const Real* x, const Real* weight,
                     int64_t N, int64_t C, int64_t OC, bool accumulate_dx) {
  gemm<Real>(Transpose::NO, Transpose::NO, N, C, OC, Real(1), dy, OC, weight, C, Real(accumulate_dx ? 1 : 0),
             dx, C);
  gemm<Real>(Transpose::YES, Transpose::NO, OC, C, N, Real(1), dy, OC, x, C, Real(1), dweight, C);
  // Column sums accumulate in double, each column in row order (deterministic for any thread count); a
  // thread owns a range of columns and walks the rows, so reads stay contiguous.
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t o0 = OC * id / threads, o1 = OC * (id + 1) / threads;
    std::vector<double> sum(static_cast<size_t>(o1 - o0), 0.0);
    for (int64_t n = 0; n < N; ++n) {
      const Real* row = dy + n * OC;
      for (int64_t o = o0; o < o1; ++o) sum[o - o0] += row[o];
    }
    for (int64_t o = o0; o < o1; ++o) dbias[o] += static_cast<Real>(sum[o - o0]);
  }
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int64_t, int64_t,
                                    int64_t);
template void linear_forward<double>(double*, const double*, const double*, const double*, int64_t, int64_t,
                                     int64_t);
template void linear_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                     int64_t, int64_t, int64_t, bool);
template void linear_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                      int64_t, int64_t, int64_t, bool);

void linear_fp8_forward(uint16_t* y, const uint8_t* x, const uint8_t* weight, const float* x_scale,
                        const float* weight_scale, int64_t weight_scale_count, const uint16_t* bias,
                        DType y_dtype, int64_t N, int64_t C, int64_t OC) {
  const bool per_channel = weight_scale_count != 1;
  const auto to_float = [y_dtype](uint16_t bits) {
    return y_dtype == DType::F16 ? f16_to_f32(bits) : bf16_to_f32(bits);
  };
  std::vector<double> w(static_cast<size_t>(OC * C)), row(static_cast<size_t>(C));
  for (int64_t i = 0; i < OC * C; ++i) w[static_cast<size_t>(i)] = e4m3_to_f32(weight[i]);
  for (int64_t n = 0; n < N; ++n) {
    const auto row_scale = static_cast<double>(x_scale[per_channel ? n : 0]);
    for (int64_t c = 0; c < C; ++c) row[static_cast<size_t>(c)] = e4m3_to_f32(x[n * C + c]);
    for (int64_t o = 0; o < OC; ++o) {
      double sum = 0.0;
      for (int64_t c = 0; c < C; ++c) sum += row[static_cast<size_t>(c)] * w[static_cast<size_t>(o * C + c)];
      const double scale = row_scale * static_cast<double>(weight_scale[per_channel ? o : 0]);
      const auto value = static_cast<float>(sum * scale + (bias ? to_float(bias[o]) : 0.0f));
      y[n * OC + o] = y_dtype == DType::F16 ? f32_to_f16(value) : f32_to_bf16(value);
    }
  }
}

}  // namespace nlpf::cpu
