// CPU kernels of the multi-head self-attention core (see attention.h), templated over float and double.
// Arithmetic runs in Real (float stays float for speed; double keeps the finite-difference tests exact); the
// products are per-head GEMMs and the softmax uses exp_approx (vector_math.h) in float.
// Layouts: q, k, v, out [B,T,C] with head h in channels [h HS, (h+1) HS); probs, keep [B,NH,T,T] (query
// t, key s). Activation gradients overwrite (=).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")  // vector_math.h: lets GCC vectorise the softmax's max and clamps
#endif

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "backend/cpu/blas.h"
#include "backend/cpu/vector_math.h"
#include "core/error.h"
#include "ops/attention_cpu.h"

namespace nlpf::cpu {
namespace {

// Query rows per forward task: enough tasks to spread B NH heads over threads, and rows enough for the
// two small GEMMs of a task to run at full speed.
constexpr int64_t kQueryBlock = 32;

// The mask is a user tensor: anything but 0/1 is an argument error (HF would silently scale the bias).
void check_mask(const char* op, const int32_t* mask, int64_t BT) {
  for (int64_t i = 0; i < BT; ++i) {
    NLPF_CHECK(mask[i] == 0 || mask[i] == 1, ErrorCode::INVALID_ARGUMENT, op, ": attention_mask[", i,
               "] = ", mask[i], ", expected 0 or 1");
  }
}

bool all_masked(const int32_t* mask_b, int64_t T) {
  for (int64_t s = 0; s < T; ++s) {
    if (mask_b[s] != 0) return false;
  }
  return true;
}

// p [T] = softmax of the scaled scores p [T] over the keys with mask_b[s] = 1; masked keys get 0. The
// reductions may reassociate (omp simd): the order is fixed by the build and the CPU's clone, so results stay
// reproducible. Always inlined, so that the clones of masked_softmax_rows_float vectorise it at their width.
template <typename Real>
[[gnu::always_inline]] inline void masked_softmax(Real* __restrict p, const int32_t* __restrict mask_b,
                                                  int64_t T) {
  Real max_score = -INFINITY;
#pragma omp simd reduction(max : max_score)
  for (int64_t s = 0; s < T; ++s) max_score = std::max(max_score, mask_b[s] != 0 ? p[s] : Real(-INFINITY));
  Real sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t s = 0; s < T; ++s) {
    const Real e = exp_approx(p[s] - max_score);
    p[s] = mask_b[s] != 0 ? e : Real(0);
    sum += p[s];
  }
  const Real inv_sum = Real(1) / sum;
#pragma omp simd
  for (int64_t s = 0; s < T; ++s) p[s] *= inv_sum;
}

// The softmax of `rows` rows of scores [rows, T] in place, one clone per vector unit (NLPF_CPU_CLONES).
NLPF_CPU_CLONES void masked_softmax_rows_float(float* p, const int32_t* mask_b, int64_t rows, int64_t T) {
  for (int64_t t = 0; t < rows; ++t) masked_softmax(p + t * T, mask_b, T);
}

template <typename Real>
void masked_softmax_rows(Real* p, const int32_t* mask_b, int64_t rows, int64_t T) {
  if constexpr (std::is_same_v<Real, float>) {
    masked_softmax_rows_float(p, mask_b, rows, T);
  } else {
    for (int64_t t = 0; t < rows; ++t) masked_softmax(p + t * T, mask_b, T);
  }
}

// pd [n] = p [n] keep [n] keep_scale (the probabilities after dropout); pd may be p.
template <typename Real>
void apply_keep(Real* pd, const Real* p, const Real* keep, Real keep_scale, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) pd[i] = p[i] * keep[i] * keep_scale;
}

}  // namespace

// out [B,T,C], probs [B,NH,T,T] (saved, before dropout); q, k, v [B,T,C]; mask [B,T]; keep [B,NH,T,T] or
// null. A task is one block of query rows of one head: scores by one GEMM straight into probs, the softmax
// in place, and the context by a second GEMM (single-threaded BLAS inside the parallel region, blas.h).
template <typename Real>
void attention_forward(Real* out, Real* probs, const Real* q, const Real* k, const Real* v,
                       const int32_t* mask, const Real* keep, Real keep_scale, int64_t B, int64_t T,
                       int64_t NH, int64_t HS) {
  check_mask("attention_forward", mask, B * T);
  const int64_t C = NH * HS;
  const Real scale = static_cast<Real>(1.0 / std::sqrt(static_cast<double>(HS)));
  const int64_t blocks = (T + kQueryBlock - 1) / kQueryBlock;
#pragma omp parallel
  {
    std::vector<Real> dropped(keep == nullptr ? 0 : kQueryBlock * T);
#pragma omp for collapse(3) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < NH; ++h) {
        for (int64_t block = 0; block < blocks; ++block) {
          const int32_t* mask_b = mask + b * T;
          const int64_t head = b * T * C + h * HS;  // offset of (b, t = 0, h) in [B,T,C]
          const int64_t t0 = block * kQueryBlock, rows = std::min(T, t0 + kQueryBlock) - t0;
          const int64_t row0 = (b * NH + h) * T + t0;  // first row of the block in probs
          Real* p = probs + row0 * T;
          if (all_masked(mask_b, T)) {
            std::fill(p, p + rows * T, static_cast<Real>(1.0 / static_cast<double>(T)));
          } else {
            gemm_serial<Real>(Transpose::NO, Transpose::YES, rows, T, HS, scale, q + head + t0 * C, C,
                              k + head, C, Real(0), p, T);
            masked_softmax_rows(p, mask_b, rows, T);
          }
          const Real* pd = p;
          if (keep != nullptr) {
            apply_keep(dropped.data(), p, keep + row0 * T, keep_scale, rows * T);
            pd = dropped.data();
          }
          gemm_serial<Real>(Transpose::NO, Transpose::NO, rows, HS, T, Real(1), pd, T, v + head, C, Real(0),
                            out + head + t0 * C, C);
        }
      }
    }
  }
}

// dq, dk, dv [B,T,C] (=); dout, q, k, v [B,T,C]; mask [B,T]; probs, keep [B,NH,T,T] (keep may be null).
// Per head, with pd = dropout(probs) and scale = 1 / sqrt(HS):
//   dv = pd^T dout,  dp = dropout(dout v^T),  dscore = p (dp - rowsum(p dp)),
//   dq = scale dscore k,  dk = scale dscore^T q.
// A sequence with every key masked has constant probs, hence dscore = 0. A task is one whole (b, h) head
// (dk and dv sum over all its queries): five small GEMMs on single-threaded BLAS and two [T,T] scratches.
template <typename Real>
void attention_backward(Real* dq, Real* dk, Real* dv, const Real* dout, const Real* q, const Real* k,
                        const Real* v, const int32_t* mask, const Real* probs, const Real* keep,
                        Real keep_scale, int64_t B, int64_t T, int64_t NH, int64_t HS) {
  check_mask("attention_backward", mask, B * T);
  const int64_t C = NH * HS;
  const Real scale = static_cast<Real>(1.0 / std::sqrt(static_cast<double>(HS)));
#pragma omp parallel
  {
    std::vector<Real> dropped(keep == nullptr ? 0 : T * T);
    std::vector<Real> dscore(T * T);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t head = b * T * C + h * HS;  // offset of (b, t = 0, h) in [B,T,C]
        const Real* p = probs + (b * NH + h) * T * T;
        const Real* keep_h = keep == nullptr ? nullptr : keep + (b * NH + h) * T * T;
        const Real* pd = p;
        if (keep_h != nullptr) {
          apply_keep(dropped.data(), p, keep_h, keep_scale, T * T);
          pd = dropped.data();
        }
        gemm_serial<Real>(Transpose::YES, Transpose::NO, T, HS, T, Real(1), pd, T, dout + head, C, Real(0),
                          dv + head, C);
        if (all_masked(mask + b * T, T)) {
          for (int64_t t = 0; t < T; ++t) {
            std::fill(dq + head + t * C, dq + head + t * C + HS, Real(0));
            std::fill(dk + head + t * C, dk + head + t * C + HS, Real(0));
          }
          continue;
        }
        Real* ds = dscore.data();
        gemm_serial<Real>(Transpose::NO, Transpose::YES, T, T, HS, Real(1), dout + head, C, v + head, C,
                          Real(0), ds, T);  // dout v^T before dropout
        for (int64_t t = 0; t < T; ++t) {
          Real* ds_t = ds + t * T;
          const Real* p_t = p + t * T;
          if (keep_h != nullptr) apply_keep(ds_t, ds_t, keep_h + t * T, keep_scale, T);  // dp[t, :]
          Real weighted_sum = 0;
#pragma omp simd reduction(+ : weighted_sum)
          for (int64_t s = 0; s < T; ++s) weighted_sum += p_t[s] * ds_t[s];
            // Masked keys have p = 0, so their dscore is 0 and they feed nothing into dq, dk.
#pragma omp simd
          for (int64_t s = 0; s < T; ++s) ds_t[s] = scale * p_t[s] * (ds_t[s] - weighted_sum);
        }
        gemm_serial<Real>(Transpose::NO, Transpose::NO, T, HS, T, Real(1), ds, T, k + head, C, Real(0),
                          dq + head, C);
        gemm_serial<Real>(Transpose::YES, Transpose::NO, T, HS, T, Real(1), ds, T, q + head, C, Real(0),
                          dk + head, C);
      }
    }
  }
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*,
                                       const int32_t*, const float*, float, int64_t, int64_t, int64_t,
                                       int64_t);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*,
                                        const int32_t*, const double*, double, int64_t, int64_t, int64_t,
                                        int64_t);
template void attention_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const int32_t*, const float*, const float*, float,
                                        int64_t, int64_t, int64_t, int64_t);
template void attention_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const int32_t*, const double*,
                                         const double*, double, int64_t, int64_t, int64_t, int64_t);

}  // namespace nlpf::cpu
