// Precision names and the per-device capability check; see precision.h.
#include "backend/precision.h"

#include "backend/cpu/bf16_gemm.h"
#include "core/error.h"

namespace nlpf {

const std::vector<std::string>& precision_names() {
  static const std::vector<std::string> kNames = {"fp32", "tf32", "fp16", "bf16", "fp8", "int8"};
  return kNames;
}

Precision parse_precision(const std::string& name, const std::string& option) {
  static const Precision kValues[] = {Precision::FP32, Precision::TF32, Precision::FP16,
                                      Precision::BF16, Precision::FP8,  Precision::INT8};
  const std::vector<std::string>& names = precision_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return kValues[i];
  }
  NLPF_THROW(ErrorCode::INVALID_ARGUMENT, option, ": unknown precision '", name,
             "'; expected fp32, tf32, fp16, bf16, fp8 or int8");
}

std::string precision_name(Precision precision) {
  return precision_names()[static_cast<size_t>(precision)];
}

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

std::optional<std::string> precision_unsupported_reason(const DeviceDescription& device,
                                                        Precision precision) {
  if (device.device.type == DeviceType::CUDA) {
    if (precision == Precision::INT8) return "int8 is reserved: no device runs it yet";
    if (precision == Precision::FP8 && device.compute_capability < 89) {
      return "fp8 needs fp8 tensor cores (sm_89 or newer); " + device.name + " is sm_" +
             std::to_string(device.compute_capability);
    }
    if ((precision == Precision::TF32 || precision == Precision::BF16) && device.compute_capability < 80) {
      return precision_name(precision) + " needs tensor cores of sm_80 or newer; " + device.name + " is sm_" +
             std::to_string(device.compute_capability);
    }
    // fp32, tf32, bf16, fp16, and fp8 from sm_89 (E4M3 GEMMs with calibrated activation scales): the CUDA
    // inference engine (model/bert_inference.h)
    return std::nullopt;
  }
  switch (precision) {
    case Precision::FP32:
      return std::nullopt;
    case Precision::BF16:
      if (!cpu_has_avx512_bf16()) {
        return "bf16 on the CPU needs AVX512-BF16 instructions, which this CPU (" + device.name + ") lacks";
      }
      if (const std::optional<std::string> reason = cpu::bf16_gemm_unavailable_reason()) {
        return "bf16 on the CPU: " + *reason;
      }
      return std::nullopt;
    case Precision::TF32:
      return "tf32 is a tensor-core format of NVIDIA GPUs (sm_80+); the CPU has none";
    case Precision::FP16:
      return "fp16 inference needs a GPU; the CPU backend has no fp16 GEMM";
    case Precision::FP8:
      return "fp8 (E4M3) needs a GPU with fp8 tensor cores (sm_89+); the CPU has none";
    case Precision::INT8:
      return "int8 is reserved: no device runs it yet";
  }
  return "unknown precision";
}

}  // namespace nlpf
