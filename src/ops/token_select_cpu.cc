// CPU reference of selecting one token per sequence, templated over float and double.
// Activation gradients overwrite (=).
#include "ops/token_select_cpu.h"

namespace nlpf::cpu {

// out [B,C] = x [B,T,C] at token index.
template <typename Real>
void token_select_forward(Real* out, const Real* x, int64_t index, int64_t B, int64_t T, int64_t C) {
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t c = 0; c < C; ++c) out[b * C + c] = x[(b * T + index) * C + c];
  }
}

// dx [B,T,C] (=): dout [B,C] at token index, 0 elsewhere.
template <typename Real>
void token_select_backward(Real* dx, const Real* dout, int64_t index, int64_t B, int64_t T, int64_t C) {
#pragma omp parallel for
  for (int64_t row = 0; row < B * T; ++row) {
    const bool selected = row % T == index;
    for (int64_t c = 0; c < C; ++c) dx[row * C + c] = selected ? dout[(row / T) * C + c] : Real(0);
  }
}

template void token_select_forward<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t);
template void token_select_forward<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t);
template void token_select_backward<float>(float*, const float*, int64_t, int64_t, int64_t, int64_t);
template void token_select_backward<double>(double*, const double*, int64_t, int64_t, int64_t, int64_t);

}  // namespace nlpf::cpu
