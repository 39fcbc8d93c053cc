// CPU kernels of gradient-norm clipping, templated over float and double: a deterministic sum of squares
// in double and an in-place scale.
#include <algorithm>
#include <vector>

#include "ops/clip_grad_norm_cpu.h"

namespace nlpf::cpu {

// x [N]: partial sums over fixed blocks of kBlock elements, added in block order, so the result is the same
// whatever the number of threads.
template <typename Real>
double sum_squares(const Real* x, int64_t N) {
  constexpr int64_t kBlock = 1 << 14;
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks);
#pragma omp parallel for
  for (int64_t blk = 0; blk < blocks; ++blk) {
    double sum = 0;
    const int64_t end = std::min(N, (blk + 1) * kBlock);
    for (int64_t i = blk * kBlock; i < end; ++i) sum += static_cast<double>(x[i]) * x[i];
    partial[blk] = sum;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

// x [N] *= scale (rounded to Real once, as torch multiplies by a tensor of the gradient's dtype).
template <typename Real>
void scale_inplace(Real* x, int64_t N, double scale) {
  const Real s = static_cast<Real>(scale);
#pragma omp parallel for
  for (int64_t i = 0; i < N; ++i) x[i] *= s;
}

template double sum_squares<float>(const float*, int64_t);
template double sum_squares<double>(const double*, int64_t);
template void scale_inplace<float>(float*, int64_t, double);
template void scale_inplace<double>(double*, int64_t, double);

}  // namespace nlpf::cpu
