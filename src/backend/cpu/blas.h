// Row-major GEMM on the host through CBLAS (OpenBLAS by default), for float and double.
// The one place that includes <cblas.h>; the ops call nlpf::cpu::gemm.
#pragma once

#include <cstdint>

namespace nlpf::cpu {

enum class Transpose { NO, YES };

// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, all row-major with leading dimensions lda, ldb,
// ldc (elements). Sizes must fit the BLAS integer (checked, INVALID_ARGUMENT).
template <typename Real>
void gemm(Transpose transpose_a, Transpose transpose_b, int64_t M, int64_t N, int64_t K, Real alpha,
          const Real* A, int64_t lda, const Real* B, int64_t ldb, Real beta, Real* C, int64_t ldc);

}  // namespace nlpf::cpu
