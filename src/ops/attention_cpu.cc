// CPU kernels of the multi-head self-attention core (see attention.h), templated over float and double.
// Arithmetic runs in Real (float stays float for speed; double keeps the finite-difference tests exact).
// Layouts: q, k, v, out [B,T,C] with head h in channels [h HS, (h+1) HS); probs, keep [B,NH,T,T] (query
// t, key s). Activation gradients overwrite (=).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/attention.h"

namespace nlpf::cpu {
namespace {

// Query rows per forward task: enough tasks to spread B NH heads over threads, few enough that packing
// the head's keys (HS T copies) stays small next to the block's HS T rows FMAs.
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

// xt [HS,T] = head rows x[s, 0:HS) (row stride C), so that dots against every key become axpys over s.
template <typename Real>
void pack_transposed(Real* xt, const Real* x, int64_t T, int64_t HS, int64_t C) {
  for (int64_t s = 0; s < T; ++s) {
    for (int64_t i = 0; i < HS; ++i) xt[i * T + s] = x[s * C + i];
  }
}

// out[s] = sum_i a[i] xt[i, s] for s < T: the inner loop is contiguous with no reduction, so GCC
// vectorises it without reassociating sums.
template <typename Real>
void dots_against_rows(Real* __restrict out, const Real* __restrict a, const Real* __restrict xt, int64_t T,
                       int64_t HS) {
  for (int64_t s = 0; s < T; ++s) out[s] = 0;
  for (int64_t i = 0; i < HS; ++i) {
    const Real a_i = a[i];
    const Real* __restrict row = xt + i * T;
    for (int64_t s = 0; s < T; ++s) out[s] += a_i * row[s];
  }
}

// y[0:n) += w x[0:n)
template <typename Real>
void axpy(Real* __restrict y, Real w, const Real* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += w * x[i];
}

}  // namespace

// out [B,T,C], probs [B,NH,T,T] (saved, before dropout); q, k, v [B,T,C]; mask [B,T]; keep [B,NH,T,T] or
// null.
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
    std::vector<Real> kt(HS * T);
    std::vector<Real> score(T);
#pragma omp for collapse(3) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < NH; ++h) {
        for (int64_t block = 0; block < blocks; ++block) {
          const int32_t* mask_b = mask + b * T;
          const int64_t head = b * T * C + h * HS;  // offset of (b, t = 0, h) in [B,T,C]
          const bool constant_probs = all_masked(mask_b, T);
          if (!constant_probs) pack_transposed(kt.data(), k + head, T, HS, C);
          const int64_t t_end = std::min(T, (block + 1) * kQueryBlock);
          for (int64_t t = block * kQueryBlock; t < t_end; ++t) {
            const int64_t row = (b * NH + h) * T + t;
            Real* p = probs + row * T;
            if (constant_probs) {
              for (int64_t s = 0; s < T; ++s) p[s] = static_cast<Real>(1.0 / static_cast<double>(T));
            } else {
              dots_against_rows(score.data(), q + head + t * C, kt.data(), T, HS);
              Real max_score = -INFINITY;
              for (int64_t s = 0; s < T; ++s) {
                if (mask_b[s] != 0) max_score = std::max(max_score, scale * score[s]);
              }
              Real sum = 0;
              for (int64_t s = 0; s < T; ++s) {
                score[s] = mask_b[s] == 0 ? Real(0) : std::exp(scale * score[s] - max_score);
                sum += score[s];
              }
              for (int64_t s = 0; s < T; ++s) p[s] = score[s] / sum;
            }
            Real* o = out + head + t * C;
            for (int64_t i = 0; i < HS; ++i) o[i] = 0;
            for (int64_t s = 0; s < T; ++s) {
              const Real w = keep == nullptr ? p[s] : p[s] * keep[row * T + s] * keep_scale;
              if (w != 0) axpy(o, w, v + head + s * C, HS);
            }
          }
        }
      }
    }
  }
}

// dq, dk, dv [B,T,C] (=); dout, q, k, v [B,T,C]; mask [B,T]; probs, keep [B,NH,T,T] (keep may be null).
// Per head, with pd = dropout(probs) and scale = 1 / sqrt(HS):
//   dv = pd^T dout,  dp = dropout(dout v^T),  dscore = p (dp - rowsum(p dp)),
//   dq = scale dscore k,  dk = scale dscore^T q.
// A sequence with every key masked has constant probs, hence dscore = 0.
template <typename Real>
void attention_backward(Real* dq, Real* dk, Real* dv, const Real* dout, const Real* q, const Real* k,
                        const Real* v, const int32_t* mask, const Real* probs, const Real* keep,
                        Real keep_scale, int64_t B, int64_t T, int64_t NH, int64_t HS) {
  check_mask("attention_backward", mask, B * T);
  const int64_t C = NH * HS;
  const Real scale = static_cast<Real>(1.0 / std::sqrt(static_cast<double>(HS)));
  // dk and dv sum over queries, so a thread owns a whole (b, h) head: disjoint writes, fixed order.
#pragma omp parallel
  {
    std::vector<Real> vt(HS * T);
    std::vector<Real> dscore(T);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t head = b * T * C + h * HS;  // offset of (b, t = 0, h) in [B,T,C]
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t i = 0; i < HS; ++i) {
            dk[head + t * C + i] = 0;
            dv[head + t * C + i] = 0;
          }
        }
        pack_transposed(vt.data(), v + head, T, HS, C);
        const bool constant_probs = all_masked(mask + b * T, T);
        for (int64_t t = 0; t < T; ++t) {
          const int64_t row = (b * NH + h) * T + t;
          const Real* p = probs + row * T;
          const Real* keep_t = keep == nullptr ? nullptr : keep + row * T;
          const Real* dout_t = dout + head + t * C;
          dots_against_rows(dscore.data(), dout_t, vt.data(), T, HS);  // dout v^T before dropout
          Real weighted_sum = 0;
          for (int64_t s = 0; s < T; ++s) {
            const Real keep_s = keep_t == nullptr ? Real(1) : keep_t[s] * keep_scale;
            // dv[s] += pd[t,s] dout[t]
            const Real pd = p[s] * keep_s;
            if (pd != 0) axpy(dv + head + s * C, pd, dout_t, HS);
            dscore[s] = keep_s == 0 ? Real(0) : keep_s * dscore[s];  // dp[t,s]
            weighted_sum += p[s] * dscore[s];
          }
          Real* dq_t = dq + head + t * C;
          for (int64_t i = 0; i < HS; ++i) dq_t[i] = 0;
          if (constant_probs) continue;
          const Real* q_t = q + head + t * C;
          for (int64_t s = 0; s < T; ++s) {
            const Real g = scale * p[s] * (dscore[s] - weighted_sum);
            if (g == 0) continue;  // masked keys (p = 0) contribute nothing
            axpy(dq_t, g, k + head + s * C, HS);
            axpy(dk + head + s * C, g, q_t, HS);
          }
        }
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
