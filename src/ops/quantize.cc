// quantize_e4m3_forward: argument checks and device dispatch (CPU: core/fp8.h's quantize_e4m3; the kernel
// in quantize_cuda.cu). Both divide in f32 and round the quotient to E4M3, so their codes agree bit for bit.
#include "ops/quantize.h"

#include <span>

#include "backend/device.h"
#include "core/fp8.h"
#include "ops/op_util.h"
#include "ops/quantize_cuda.h"

namespace nlpf::ops {

void quantize_e4m3_forward(ExecutionContext& ctx, Tensor& codes, const Tensor& x, const Tensor& scale) {
  constexpr const char* kOp = "quantize_e4m3_forward";
  NLPF_CHECK(x.dtype() == DType::F32 || x.dtype() == DType::BF16 || x.dtype() == DType::F16,
             ErrorCode::INVALID_ARGUMENT, kOp, ": x has dtype ", dtype_name(x.dtype()),
             ", expected f32, bf16 or f16");
  detail::check_dtype(kOp, "codes", codes, DType::F8E4M3);
  detail::check_shape(kOp, "codes", codes, x.shape());
  detail::check_dtype(kOp, "scale", scale, DType::F32);
  detail::check_shape(kOp, "scale", scale, {1});
  const Device device = detail::common_device(kOp, ctx, {{"codes", &codes}, {"x", &x}, {"scale", &scale}});
  switch (device.type) {
    case DeviceType::CPU: {
      const Tensor x32 = x.dtype() == DType::F32 ? x : x.to(DType::F32);
      const auto n = static_cast<size_t>(x.numel());
      quantize_e4m3(std::span<const float>(x32.data<float>(), n), scale.data<float>()[0],
                    std::span<uint8_t>(static_cast<uint8_t*>(codes.raw_data()), n));
      return;
    }
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::quantize_e4m3_forward(ctx, static_cast<uint8_t*>(codes.raw_data()), x.raw_data(), x.dtype(),
                                    scale.data<float>(), x.numel());
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
