// CPU reference of the multi-head self-attention core (see attention.h), templated over float and double.
// Dot products and softmax sums accumulate in double. Layouts: q, k, v, out [B,T,C] with head h in channels
// [h HS, (h+1) HS); probs, keep [B,NH,T,T] (query t, key s). Activation gradients overwrite (=).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "ops/attention.h"

namespace nlpf::cpu {
namespace {

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

template <typename Real>
double dot(const Real* a, const Real* b, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return sum;
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
  const double scale = 1.0 / std::sqrt(static_cast<double>(HS));
#pragma omp parallel
  {
    std::vector<double> score(T);
#pragma omp for collapse(3)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < NH; ++h) {
        for (int64_t t = 0; t < T; ++t) {
          const int64_t row = (b * NH + h) * T + t;
          const int32_t* mask_b = mask + b * T;
          const Real* q_t = q + (b * T + t) * C + h * HS;
          Real* p = probs + row * T;
          if (all_masked(mask_b, T)) {
            for (int64_t s = 0; s < T; ++s) p[s] = static_cast<Real>(1.0 / T);
          } else {
            double max_score = -INFINITY;
            for (int64_t s = 0; s < T; ++s) {
              if (mask_b[s] == 0) continue;
              score[s] = scale * dot(q_t, k + (b * T + s) * C + h * HS, HS);
              max_score = std::max(max_score, score[s]);
            }
            double sum = 0;
            for (int64_t s = 0; s < T; ++s) {
              score[s] = mask_b[s] == 0 ? 0.0 : std::exp(score[s] - max_score);
              sum += score[s];
            }
            for (int64_t s = 0; s < T; ++s) p[s] = static_cast<Real>(score[s] / sum);
          }
          Real* o = out + (b * T + t) * C + h * HS;
          for (int64_t i = 0; i < HS; ++i) o[i] = 0;
          for (int64_t s = 0; s < T; ++s) {
            const Real w = keep == nullptr ? p[s] : p[s] * keep[row * T + s] * keep_scale;
            if (w == 0) continue;
            const Real* v_s = v + (b * T + s) * C + h * HS;
            for (int64_t i = 0; i < HS; ++i) o[i] += w * v_s[i];
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
  const double scale = 1.0 / std::sqrt(static_cast<double>(HS));
  // dk and dv sum over queries, so a thread owns a whole (b, h) head: disjoint writes, fixed order.
#pragma omp parallel
  {
    std::vector<double> dscore(T);
#pragma omp for collapse(2)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < NH; ++h) {
        const int64_t head = b * T * C + h * HS;  // offset of (b, t = 0, h) in [B,T,C]
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t i = 0; i < HS; ++i) {
            dk[head + t * C + i] = 0;
            dv[head + t * C + i] = 0;
          }
        }
        const bool constant_probs = all_masked(mask + b * T, T);
        for (int64_t t = 0; t < T; ++t) {
          const int64_t row = (b * NH + h) * T + t;
          const Real* p = probs + row * T;
          const Real* dout_t = dout + head + t * C;
          double weighted_sum = 0;
          for (int64_t s = 0; s < T; ++s) {
            const double keep_s = keep == nullptr ? 1.0 : static_cast<double>(keep[row * T + s]) * keep_scale;
            // dv[s] += pd[t,s] dout[t]
            const Real pd = static_cast<Real>(p[s] * keep_s);
            if (pd != 0) {
              Real* dv_s = dv + head + s * C;
              for (int64_t i = 0; i < HS; ++i) dv_s[i] += pd * dout_t[i];
            }
            dscore[s] = keep_s == 0 ? 0.0 : keep_s * dot(dout_t, v + head + s * C, HS);  // dp[t,s]
            weighted_sum += p[s] * dscore[s];
          }
          Real* dq_t = dq + head + t * C;
          for (int64_t i = 0; i < HS; ++i) dq_t[i] = 0;
          if (constant_probs) continue;
          const Real* q_t = q + head + t * C;
          for (int64_t s = 0; s < T; ++s) {
            const Real g = static_cast<Real>(scale * p[s] * (dscore[s] - weighted_sum));
            if (g == 0) continue;  // masked keys (p = 0) contribute nothing
            const Real* k_s = k + head + s * C;
            Real* dk_s = dk + head + s * C;
            for (int64_t i = 0; i < HS; ++i) {
              dq_t[i] += g * k_s[i];
              dk_s[i] += g * q_t[i];
            }
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
