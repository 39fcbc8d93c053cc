// Row-major GEMM on the host through CBLAS (OpenBLAS by default), for float and double.
// The one place that includes <cblas.h>; the ops call nlpf::cpu::gemm. One thread pool: the BLAS itself
// always runs single-threaded and our OpenMP threads split the work, because an OpenBLAS pthread pool and the
// OpenMP pool busy-wait against each other on the same cores (bench/RESULTS.md, CPU engine).
#pragma once

#include <omp.h>

#include <cstdint>

namespace nlpf::cpu {

enum class Transpose { NO, YES };

// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, all row-major with leading dimensions lda, ldb,
// ldc (elements), on the calling thread only. Sizes must fit the BLAS integer (checked, INVALID_ARGUMENT).
template <typename Real>
void gemm_serial(Transpose transpose_a, Transpose transpose_b, int64_t M, int64_t N, int64_t K, Real alpha,
                 const Real* A, int64_t lda, const Real* B, int64_t ldb, Real beta, Real* C, int64_t ldc);

// A grid of rows x cols tiles over an M x N output.
struct TileGrid {
  int64_t rows = 1;
  int64_t cols = 1;
};

// Start of part i of `parts` over [0, n): multiples of 16 (whole register blocks of the BLAS kernels)
// except the end, n.
inline int64_t tile_start(int64_t n, int64_t i, int64_t parts) {
  constexpr int64_t kAlign = 16;
  return i >= parts ? n : n * i / parts / kAlign * kAlign;
}

// The grid for an M x N x K product on `threads` threads: each tile packs its own op(A) rows and op(B)
// columns (K (m + n) copies) next to its m n K multiply-adds, so tiles stay near square and large. A product
// too small to pay for a parallel region gets one tile.
TileGrid plan_tiles(int64_t M, int64_t N, int64_t K, int threads);

// Calls tile(m0, m1, n0, n1) once per tile of plan_tiles's grid, the tiles spread over the OpenMP threads;
// inside a parallel region, once for the whole output on the calling thread. Tiles are disjoint, so tile may
// write its block of the output freely; which thread runs which tile is fixed by the thread count.
template <typename TileFn>
void parallel_tiles(int64_t M, int64_t N, int64_t K, TileFn&& tile) {
  if (M == 0 || N == 0) return;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const TileGrid grid = plan_tiles(M, N, K, threads);
  const int64_t tiles = grid.rows * grid.cols;
  if (tiles == 1) {
    tile(int64_t{0}, M, int64_t{0}, N);
    return;
  }
#pragma omp parallel for num_threads(static_cast <int>(tiles)) schedule(static, 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t r = t / grid.cols, c = t % grid.cols;
    const int64_t m0 = tile_start(M, r, grid.rows), m1 = tile_start(M, r + 1, grid.rows);
    const int64_t n0 = tile_start(N, c, grid.cols), n1 = tile_start(N, c + 1, grid.cols);
    if (m0 < m1 && n0 < n1) tile(m0, m1, n0, n1);
  }
}

// gemm_serial's product split into tiles over the OpenMP threads (parallel_tiles).
template <typename Real>
void gemm(Transpose transpose_a, Transpose transpose_b, int64_t M, int64_t N, int64_t K, Real alpha,
          const Real* A, int64_t lda, const Real* B, int64_t ldb, Real beta, Real* C, int64_t ldc);

}  // namespace nlpf::cpu
