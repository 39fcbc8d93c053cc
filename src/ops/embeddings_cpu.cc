// CPU reference of the BERT embeddings (see embeddings.h), templated over float and double.
// Parameter gradients accumulate (+=), activation gradients overwrite (=).
#include <omp.h>

#include "ops/embeddings_cpu.h"

namespace nlpf::cpu {
namespace {

// Ids come from user data: a bad one is an argument error, found before anything is written.
void check_ids(const char* op, const int32_t* input_ids, const int32_t* token_type_ids, int64_t BT, int64_t V,
               int64_t TV) {
  for (int64_t i = 0; i < BT; ++i) {
    NLPF_CHECK(input_ids[i] >= 0 && input_ids[i] < V, ErrorCode::INVALID_ARGUMENT, op, ": input_ids[", i,
               "] = ", input_ids[i], " is outside the vocabulary [0, ", V, ")");
    NLPF_CHECK(token_type_ids[i] >= 0 && token_type_ids[i] < TV, ErrorCode::INVALID_ARGUMENT, op,
               ": token_type_ids[", i, "] = ", token_type_ids[i], " is outside [0, ", TV, ")");
  }
}

}  // namespace

// out [B,T,C]; input_ids, token_type_ids [B,T]; word [V,C], position [P,C], token_type [TV,C].
template <typename Real>
void embeddings_forward(Real* out, const int32_t* input_ids, const int32_t* token_type_ids, const Real* word,
                        const Real* position, const Real* token_type, int64_t B, int64_t T, int64_t C,
                        int64_t V, int64_t P, int64_t TV) {
  check_ids("embeddings_forward", input_ids, token_type_ids, B * T, V, TV);
  NLPF_CHECK(T <= P, ErrorCode::INVALID_ARGUMENT, "embeddings_forward: T = ", T,
             " exceeds positions P = ", P);
#pragma omp parallel for
  for (int64_t row = 0; row < B * T; ++row) {
    const Real* w = word + input_ids[row] * C;
    const Real* p = position + (row % T) * C;
    const Real* tt = token_type + token_type_ids[row] * C;
    Real* o = out + row * C;
    for (int64_t c = 0; c < C; ++c) o[c] = w[c] + p[c] + tt[c];
  }
}

// dword [V,C], dposition [P,C], dtoken_type [TV,C] (+=); dout [B,T,C].
template <typename Real>
void embeddings_backward(Real* dword, Real* dposition, Real* dtoken_type, const Real* dout,
                         const int32_t* input_ids, const int32_t* token_type_ids, const int32_t* padding_mask,
                         int64_t B, int64_t T, int64_t C, int64_t V, int64_t TV) {
  check_ids("embeddings_backward", input_ids, token_type_ids, B * T, V, TV);
  // Rows repeat ids, so threads split the channels instead of the rows: no races, and every table entry
  // sums its rows in the same order whatever the thread count (deterministic gradients).
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t c0 = C * id / threads, c1 = C * (id + 1) / threads;
    for (int64_t row = 0; row < B * T; ++row) {
      if (padding_mask != nullptr && padding_mask[row] == 0 && padding_mask[row - row % T] != 0) continue;
      const Real* d = dout + row * C;
      Real* dw = dword + input_ids[row] * C;
      Real* dp = dposition + (row % T) * C;
      Real* dt = dtoken_type + token_type_ids[row] * C;
      for (int64_t c = c0; c < c1; ++c) {
        dw[c] += d[c];
        dp[c] += d[c];
        dt[c] += d[c];
      }
    }
  }
}

template void embeddings_forward<float>(float*, const int32_t*, const int32_t*, const float*, const float*,
                                        const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
template void embeddings_forward<double>(double*, const int32_t*, const int32_t*, const double*,
                                         const double*, const double*, int64_t, int64_t, int64_t, int64_t,
                                         int64_t, int64_t);
template void embeddings_backward<float>(float*, float*, float*, const float*, const int32_t*, const int32_t*,
                                         const int32_t*, int64_t, int64_t, int64_t, int64_t, int64_t);
template void embeddings_backward<double>(double*, double*, double*, const double*, const int32_t*,
                                          const int32_t*, const int32_t*, int64_t, int64_t, int64_t, int64_t,
                                          int64_t);

}  // namespace nlpf::cpu
