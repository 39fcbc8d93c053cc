// convert_many: argument checks and device dispatch (the CUDA kernel in convert_cuda.cu; the CPU rounds on
// the host, op_util's round_into).
#include "ops/convert.h"

#include <vector>

#include "backend/device.h"
#include "ops/convert_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {

void convert_many(ExecutionContext& ctx, std::span<const ConvertPair> pairs) {
  constexpr const char* kOp = "convert_many";
  if (pairs.empty()) return;
  const DType dtype = pairs.front().dst != nullptr ? pairs.front().dst->dtype() : DType::BF16;
  for (const ConvertPair& pair : pairs) {
    NLPF_CHECK(pair.dst != nullptr && pair.src != nullptr, ErrorCode::INVALID_ARGUMENT, kOp,
               ": a null tensor");
    detail::check_dtype(kOp, "src", *pair.src, DType::F32);
    detail::check_16bit(kOp, "dst", *pair.dst, pair.src->shape());
    NLPF_CHECK(pair.dst->dtype() == dtype, ErrorCode::INVALID_ARGUMENT, kOp, ": dst tensors of ",
               dtype_name(dtype), " and ", dtype_name(pair.dst->dtype()), " (one dtype per call)");
    detail::common_device(kOp, ctx, {{"dst", pair.dst}, {"src", pair.src}});
  }
  switch (ctx.device().type) {
    case DeviceType::CPU:
      for (const ConvertPair& pair : pairs) detail::round_into(*pair.dst, *pair.src);
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        std::vector<cuda::ConvertEntry> entries;
        entries.reserve(pairs.size());
        for (const ConvertPair& pair : pairs) {
          entries.push_back({pair.dst->raw_data(), pair.src->data<float>(), pair.src->numel()});
        }
        cuda::convert_many(ctx, entries, dtype);
        return;
      }
      detail::throw_no_cuda_kernel(kOp);
  }
}

}  // namespace nlpf::ops
