// CPU reference of dropout with a given keep mask, templated over float and double, and the Philox keep
// mask. The backward is the same map applied to dout, so one kernel serves both. Activation gradients
// overwrite (=).
#include "ops/dropout_cpu.h"
#include "core/random.h"

namespace nlpf::cpu {

// out [N] = x [N] * keep [N] * scale.
template <typename Real>
void dropout_forward(Real* out, const Real* x, const Real* keep, Real scale, int64_t N) {
#pragma omp parallel for
  for (int64_t i = 0; i < N; ++i) out[i] = x[i] * keep[i] * scale;
}

// keep [N]: element i draws stream index offset + i, lane (offset + i) % 4 of Philox block (offset + i) / 4;
// each block is computed once for its (up to) four elements.
template <typename Real>
void dropout_mask(Real* keep, double p, uint64_t seed, uint64_t offset, int64_t N) {
  const float keep_probability = static_cast<float>(1.0 - p);
  const uint64_t first_block = offset / 4, end_block = (offset + N + 3) / 4;
#pragma omp parallel for
  for (uint64_t block = first_block; block < end_block; ++block) {
    const PhiloxCounter x = philox_block(seed, block);
    for (uint64_t lane = 0; lane < 4; ++lane) {
      const uint64_t index = block * 4 + lane;
      if (index < offset || index >= offset + N) continue;
      keep[index - offset] = uint32_to_uniform(x[lane]) < keep_probability ? Real(1) : Real(0);
    }
  }
}

template void dropout_forward<float>(float*, const float*, const float*, float, int64_t);
template void dropout_forward<double>(double*, const double*, const double*, double, int64_t);
template void dropout_mask<float>(float*, double, uint64_t, uint64_t, int64_t);
template void dropout_mask<double>(double*, double, uint64_t, uint64_t, int64_t);

}  // namespace nlpf::cpu
