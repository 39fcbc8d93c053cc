// CBLAS wrappers of nlpf::cpu::gemm (row-major) and the tiling that spreads one product over the OpenMP
// threads. BLAS integers are 32-bit in Debian's OpenBLAS, so sizes are checked before the call instead of
// silently truncated.
#include "backend/cpu/blas.h"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "core/error.h"

#if NLPF_OPENBLAS
// Declared here too: the cblas.h found may be another library's.
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace nlpf::cpu {
namespace {

// Multiply-adds worth one copied element when packing (a vector FMA unit against a strided copy).
constexpr int64_t kMultiplyAddsPerCopy = 16;
// Multiply-adds below which a tile is not worth a thread (a few microseconds of work).
constexpr int64_t kMinTileWork = int64_t{1} << 17;

int to_blas_int(int64_t v, const char* what) {
  NLPF_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(), ErrorCode::INVALID_ARGUMENT, "gemm: ", what,
             " = ", v, " does not fit a BLAS integer");
  return static_cast<int>(v);
}

CBLAS_TRANSPOSE to_cblas(Transpose t) {
  return t == Transpose::YES ? CblasTrans : CblasNoTrans;
}

// OpenBLAS starts with as many threads as cores; every call of ours runs on one thread of our OpenMP pool
// instead (blas.h). Other BLAS libraries follow their own settings (e.g. MKL_NUM_THREADS=1).
void use_single_threaded_blas() {
#if NLPF_OPENBLAS
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
#endif
}

}  // namespace

TileGrid plan_tiles(int64_t M, int64_t N, int64_t K, int threads) {
  const int64_t work = M * N * std::max<int64_t>(K, 1);
  const int64_t usable = std::clamp<int64_t>(work / kMinTileWork, 1, threads);
  TileGrid best;
  double best_cost = std::numeric_limits<double>::infinity();
  // Tiles of fewer than 16 rows or columns would leave BLAS register blocks partly empty (tile_start).
  const int64_t max_rows = std::min(usable, (M + 15) / 16), max_cols = (N + 15) / 16;
  for (int64_t rows = 1; rows <= max_rows; ++rows) {
    const int64_t cols = std::min(usable / rows, max_cols);
    const double m = static_cast<double>((M + rows - 1) / rows),
                 n = static_cast<double>((N + cols - 1) / cols);
    // The slowest tile sets the time: its multiply-adds plus its packing, per unit of K.
    const double cost = m * n / kMultiplyAddsPerCopy + m + n;
    if (cost < best_cost) {
      best_cost = cost;
      best = {rows, cols};
    }
  }
  return best;
}

template <>
void gemm_serial<float>(Transpose transpose_a, Transpose transpose_b, int64_t M, int64_t N, int64_t K,
                        float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
                        float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  use_single_threaded_blas();
  cblas_sgemm(CblasRowMajor, to_cblas(transpose_a), to_cblas(transpose_b), to_blas_int(M, "M"),
              to_blas_int(N, "N"), to_blas_int(K, "K"), alpha, A, to_blas_int(lda, "lda"), B,
              to_blas_int(ldb, "ldb"), beta, C, to_blas_int(ldc, "ldc"));
}

template <>
void gemm_serial<double>(Transpose transpose_a, Transpose transpose_b, int64_t M, int64_t N, int64_t K,
                         double alpha, const double* A, int64_t lda, const double* B, int64_t ldb,
                         double beta, double* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  use_single_threaded_blas();
  cblas_dgemm(CblasRowMajor, to_cblas(transpose_a), to_cblas(transpose_b), to_blas_int(M, "M"),
              to_blas_int(N, "N"), to_blas_int(K, "K"), alpha, A, to_blas_int(lda, "lda"), B,
              to_blas_int(ldb, "ldb"), beta, C, to_blas_int(ldc, "ldc"));
}

template <typename Real>
void gemm(Transpose transpose_a, Transpose transpose_b, int64_t M, int64_t N, int64_t K, Real alpha,
          const Real* A, int64_t lda, const Real* B, int64_t ldb, Real beta, Real* C, int64_t ldc) {
  // Argument errors surface on the calling thread, not inside the parallel region.
  for (const auto& [v, what] :
       {std::pair{M, "M"}, {N, "N"}, {K, "K"}, {lda, "lda"}, {ldb, "ldb"}, {ldc, "ldc"}}) {
    to_blas_int(v, what);
  }
  parallel_tiles(M, N, K, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    // Row m of op(A) starts at A + m lda (stored [M,K]) or A + m (stored [K,M]); column n of op(B) at B + n
    // (stored [K,N]) or B + n ldb (stored [N,K]).
    const Real* a = transpose_a == Transpose::NO ? A + m0 * lda : A + m0;
    const Real* b = transpose_b == Transpose::NO ? B + n0 : B + n0 * ldb;
    gemm_serial<Real>(transpose_a, transpose_b, m1 - m0, n1 - n0, K, alpha, a, lda, b, ldb, beta,
                      C + m0 * ldc + n0, ldc);
  });
}

template void gemm<float>(Transpose, Transpose, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(Transpose, Transpose, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace nlpf::cpu
