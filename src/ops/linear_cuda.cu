// linear_forward on CUDA: one cuBLASLt GEMM with the bias epilogue and the residual as its C matrix.
#include "ops/linear_cuda.h"

#include "backend/cuda/gemm.h"

namespace nlpf::cuda {

void linear_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight, const void* bias,
                    const void* residual, DType dtype, int64_t N, int64_t C, int64_t OC, int64_t ldx) {
  GemmArgs args;
  args.y = y;
  args.x = x;
  args.weight = weight;
  args.bias = bias;
  args.residual = residual;
  args.dtype = dtype;
  args.N = N;
  args.C = C;
  args.OC = OC;
  args.ldx = ldx;
  gemm(ctx, args);
}

void linear_gelu_tanh_forward(ExecutionContext& ctx, void* y, const void* x, const void* weight, const void* bias,
                              DType dtype, int64_t N, int64_t C, int64_t OC) {
  GemmArgs args;
  args.y = y;
  args.x = x;
  args.weight = weight;
  args.bias = bias;
  args.dtype = dtype;
  args.gelu = true;
  args.N = N;
  args.C = C;
  args.OC = OC;
  args.ldx = C;
  gemm(ctx, args);
}

}  // namespace nlpf::cuda
