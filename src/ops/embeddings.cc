// embeddings_forward / embeddings_backward: argument checks and device dispatch (kernels in
// embeddings_cpu.cc and embeddings_cuda.cu). Parameter gradients accumulate (+=), activation gradients
// overwrite (=).
#include "ops/embeddings.h"
#include "backend/device.h"
#include "ops/embeddings_cpu.h"
#include "ops/embeddings_cuda.h"
#include "ops/op_util.h"

namespace nlpf::ops {
namespace {
constexpr const char* kForward = "embeddings_forward";
constexpr const char* kBackward = "embeddings_backward";

void check_ids(const char* op, const Tensor& input_ids, const Tensor& token_type_ids) {
  detail::check_dtype(op, "input_ids", input_ids, DType::I32);
  detail::check_dtype(op, "token_type_ids", token_type_ids, DType::I32);
  NLPF_CHECK(input_ids.rank() == 2, ErrorCode::INVALID_ARGUMENT, op, ": input_ids has shape ",
             shape_string(input_ids.shape()), ", expected [B, T]");
  detail::check_shape(op, "token_type_ids", token_type_ids, input_ids.shape());
}

void check_table(const char* op, const char* name, const Tensor& table, int64_t C) {
  detail::check_dtype(op, name, table, DType::F32);
  NLPF_CHECK(table.rank() == 2 && table.dim(1) == C, ErrorCode::INVALID_ARGUMENT, op, ": ", name,
             " has shape ", shape_string(table.shape()), ", expected [rows, ", C, "]");
}
}  // namespace

void embeddings_forward(ExecutionContext& ctx, Tensor& out, const Tensor& input_ids,
                        const Tensor& token_type_ids, const Tensor& word, const Tensor& position,
                        const Tensor& token_type) {
  check_ids(kForward, input_ids, token_type_ids);
  detail::check_min_rank(kForward, "word", word, 2);
  const int64_t B = input_ids.dim(0), T = input_ids.dim(1), C = word.dim(1);
  check_table(kForward, "word", word, C);
  check_table(kForward, "position", position, C);
  check_table(kForward, "token_type", token_type, C);
  NLPF_CHECK(position.dim(0) >= T, ErrorCode::INVALID_ARGUMENT, kForward, ": position has shape ",
             shape_string(position.shape()), ", fewer rows than the sequence length T = ", T);
  detail::check_dtype(kForward, "out", out, DType::F32);
  detail::check_shape(kForward, "out", out, {B, T, C});
  const Device device = detail::common_device(kForward, ctx,
                                              {{"out", &out},
                                               {"input_ids", &input_ids},
                                               {"token_type_ids", &token_type_ids},
                                               {"word", &word},
                                               {"position", &position},
                                               {"token_type", &token_type}});
  switch (device.type) {
    case DeviceType::CPU:
      cpu::embeddings_forward(out.data<float>(), input_ids.data<int32_t>(), token_type_ids.data<int32_t>(),
                              word.data<float>(), position.data<float>(), token_type.data<float>(), B, T, C,
                              word.dim(0), position.dim(0), token_type.dim(0));
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::embeddings_forward(ctx, out.data<float>(), input_ids.data<int32_t>(),
                                 token_type_ids.data<int32_t>(), word.data<float>(), position.data<float>(),
                                 token_type.data<float>(), B, T, C, word.dim(0), token_type.dim(0));
        return;
      }
      detail::throw_no_cuda_kernel(kForward);
  }
}

void embeddings_backward(ExecutionContext& ctx, Tensor& dword, Tensor& dposition, Tensor& dtoken_type,
                         const Tensor& dout, const Tensor& input_ids, const Tensor& token_type_ids,
                         const Tensor* padding_mask) {
  check_ids(kBackward, input_ids, token_type_ids);
  if (padding_mask != nullptr) {
    detail::check_dtype(kBackward, "padding_mask", *padding_mask, DType::I32);
    detail::check_shape(kBackward, "padding_mask", *padding_mask, input_ids.shape());
  }
  detail::check_min_rank(kBackward, "dword", dword, 2);
  const int64_t B = input_ids.dim(0), T = input_ids.dim(1), C = dword.dim(1);
  check_table(kBackward, "dword", dword, C);
  check_table(kBackward, "dposition", dposition, C);
  check_table(kBackward, "dtoken_type", dtoken_type, C);
  NLPF_CHECK(dposition.dim(0) >= T, ErrorCode::INVALID_ARGUMENT, kBackward, ": dposition has shape ",
             shape_string(dposition.shape()), ", fewer rows than the sequence length T = ", T);
  detail::check_dtype(kBackward, "dout", dout, DType::F32);
  detail::check_shape(kBackward, "dout", dout, {B, T, C});
  const Device device = detail::common_device(kBackward, ctx,
                                              {{"dword", &dword},
                                               {"dposition", &dposition},
                                               {"dtoken_type", &dtoken_type},
                                               {"dout", &dout},
                                               {"input_ids", &input_ids},
                                               {"token_type_ids", &token_type_ids}});
  if (padding_mask != nullptr) {
    NLPF_CHECK(padding_mask->device() == device, ErrorCode::INVALID_ARGUMENT, kBackward,
               ": padding_mask is on another device than dword");
  }
  const int32_t* mask = padding_mask != nullptr ? padding_mask->data<int32_t>() : nullptr;
  switch (device.type) {
    case DeviceType::CPU:
      cpu::embeddings_backward(dword.data<float>(), dposition.data<float>(), dtoken_type.data<float>(),
                               dout.data<float>(), input_ids.data<int32_t>(), token_type_ids.data<int32_t>(),
                               mask, B, T, C, dword.dim(0), dtoken_type.dim(0));
      return;
    case DeviceType::CUDA:
      if constexpr (kCudaBuilt) {
        cuda::embeddings_backward(ctx, dword.data<float>(), dposition.data<float>(),
                                  dtoken_type.data<float>(), dout.data<float>(), input_ids.data<int32_t>(),
                                  token_type_ids.data<int32_t>(), mask, B, T, C, dword.dim(0),
                                  dtoken_type.dim(0));
        return;
      }
      detail::throw_no_cuda_kernel(kBackward);
  }
}

}  // namespace nlpf::ops
