// CBLAS wrappers of nlpf::cpu::gemm (row-major). BLAS integers are 32-bit in Debian's OpenBLAS, so sizes
// are checked before the call instead of silently truncated.
#include "backend/cpu/blas.h"

#include <cblas.h>

#include <limits>

#include "core/error.h"

namespace nlpf::cpu {
namespace {

int to_blas_int(int64_t v, const char* what) {
  NLPF_CHECK(v >= 0 && v <= std::numeric_limits<int>::max(), ErrorCode::INVALID_ARGUMENT, "gemm: ", what,
             " = ", v, " does not fit a BLAS integer");
  return static_cast<int>(v);
}

CBLAS_TRANSPOSE to_cblas(Transpose t) {
  return t == Transpose::YES ? CblasTrans : CblasNoTrans;
}

}  // namespace

template <>
void gemm<float>(Transpose transpose_a, Transpose transpose_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                 int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, to_cblas(transpose_a), to_cblas(transpose_b), to_blas_int(M, "M"),
              to_blas_int(N, "N"), to_blas_int(K, "K"), alpha, A, to_blas_int(lda, "lda"), B,
              to_blas_int(ldb, "ldb"), beta, C, to_blas_int(ldc, "ldc"));
}

template <>
void gemm<double>(Transpose transpose_a, Transpose transpose_b, int64_t M, int64_t N, int64_t K, double alpha,
                  const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
                  int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_dgemm(CblasRowMajor, to_cblas(transpose_a), to_cblas(transpose_b), to_blas_int(M, "M"),
              to_blas_int(N, "N"), to_blas_int(K, "K"), alpha, A, to_blas_int(lda, "lda"), B,
              to_blas_int(ldb, "ldb"), beta, C, to_blas_int(ldc, "ldc"));
}

}  // namespace nlpf::cpu
