// Elementary functions for the CPU kernels' inner loops in float: branch-free and call-free, so that GCC
// vectorises the loops that use them (glibc's expf/erff are scalar calls). Each states its error; the double
// overloads are the library's, so the double kernels of the gradient tests stay exact references.
// GCC vectorises their clamps and selects only without -ftrapping-math (a float comparison might trap, so it
// stays a branch): a kernel file using them starts with #pragma GCC optimize("no-trapping-math"), before any
// include (gelu_cpu.cc). No kernel relies on floating-point exceptions.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

// NLPF_CPU_CLONES before a float kernel's inner function compiles it three times, for AVX-512, AVX2 + FMA and
// plain x86-64, the CPU picking one at load time: the library itself targets plain x86-64 (4 float lanes),
// while PyTorch dispatches to the widest unit. Results are reproducible on one machine (the build and the
// CPU fix the code), not bit-identical across CPUs, as OpenBLAS's kernels already are not.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NLPF_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NLPF_CPU_CLONES
#endif

namespace nlpf::cpu {

// e^x within 2 ulp for x in [-87, 88] (clamped outside: e^-87 ~ 1.6e-38 stands in for underflow).
// exp(x) = 2^n e^r with n = round(x log2 e) and r = x - n ln 2 (ln 2 split in two so that n ln 2 is exact),
// |r| <= ln(2)/2, and e^r by its Taylor polynomial of degree 7 (truncation below 5e-9).
inline float exp_approx(float x) {
  constexpr float kLog2e = 1.44269504f, kLn2Hi = 0.693145752f, kLn2Lo = 1.42860677e-6f;
  constexpr float kRound = 12582912.0f;  // 1.5 2^23: adding and subtracting it rounds to an integer
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (x * kLog2e + kRound) - kRound;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return p * two_n;
}
inline double exp_approx(double x) {
  return std::exp(x);
}

// erf(x) with absolute error below 4e-7 (float rounding; the formula's own 1.5e-7). For |x| >= 0.5,
// Abramowitz & Stegun 7.1.26: erf(z) = 1 - t P(t) e^{-z^2} with t = 1 / (1 + 0.3275911 z), z = |x| (PyTorch's
// vectorised erf uses the same formula); below 0.5 that form cancels in float, so the Maclaurin series
// 2/sqrt(pi) (z - z^3/3 + z^5/10 - ...) to z^11 takes over (truncation below 2e-8). Both are computed and one
// selected, which keeps loops vectorisable.
inline float erf_approx(float x) {
  const float z = std::fabs(x), z2 = z * z;
  const float t = 1.0f / (1.0f + 0.3275911f * z);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float tail = 1.0f - p * t * exp_approx(-z2);
  float s = -1.0f / 1320;
  s = s * z2 + 1.0f / 216;
  s = s * z2 - 1.0f / 42;
  s = s * z2 + 1.0f / 10;
  s = s * z2 - 1.0f / 3;
  s = s * z2 + 1.0f;
  const float series = 1.12837917f * z * s;  // 2 / sqrt(pi) = 1.1283791670955126
  return std::copysign(z < 0.5f ? series : tail, x);
}
inline double erf_approx(double x) {
  return std::erf(x);
}

}  // namespace nlpf::cpu
