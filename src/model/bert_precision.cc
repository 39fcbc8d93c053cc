// BertForSequenceClassification::set_inference_precision: converting a trained fp32 model for a 16-bit
// inference precision (the rest of the class is in bert_model.cc).
#include "backend/cpu/bf16_gemm.h"
#include "core/error.h"
#include "model/bert_model.h"

namespace nlpf {

void BertForSequenceClassification::set_inference_precision(Precision precision) {
  if (precision == precision_) return;
  NLPF_CHECK(ctx_->device().type == DeviceType::CPU, ErrorCode::UNSUPPORTED,
             "set_inference_precision: this model trains on the GPU; GPU inference in ",
             precision_name(precision), " runs in BertInference (model/bert_inference.h)");
  NLPF_CHECK(precision_ == Precision::FP32, ErrorCode::INVALID_ARGUMENT,
             "set_inference_precision: the model is ", precision_name(precision_),
             " already; convert from fp32 only");
  if (precision == Precision::BF16) {
    if (const std::optional<std::string> reason = cpu::bf16_gemm_unavailable_reason()) {
      NLPF_THROW(ErrorCode::UNSUPPORTED, "bf16 inference on the CPU: ", *reason);
    }
  } else {
    NLPF_THROW(ErrorCode::UNSUPPORTED, precision_name(precision),
               " inference is not available on the CPU backend");
  }
  drop_gradients();
  for (auto& [name, tensor] : parameters_) {
    // Linear weights are the rank-2 "...weight" tensors other than the embedding tables.
    const bool embedding = name.find("embeddings") != std::string::npos;
    if (!embedding && tensor.rank() == 2) tensor = tensor.to(DType::BF16);
  }
  packed_parameters_.clear();  // q, k, v's weights are copies now; the CPU's layers never read the packing
  bind_views();
  precision_ = precision;
}

}  // namespace nlpf
