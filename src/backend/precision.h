// Inference precisions (DESIGN §5) and what each device can run. The names are known everywhere (command
// line, run files); whether a device runs one is decided here, before any work, with the reason when not
// (the supports_op idea of ggml). fp32 = IEEE fp32 math (no TF32); tf32; fp16/bf16 = 16-bit weights and
// activations with fp32 accumulation and fp32 LayerNorm/softmax statistics; fp8 = E4M3 GEMM inputs with
// scales (sm_89+); int8 is reserved.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backend/device.h"

namespace nlpf {

enum class Precision { FP32, TF32, FP16, BF16, FP8, INT8 };

const std::vector<std::string>& precision_names();  // fp32 tf32 fp16 bf16 fp8 int8
// INVALID_ARGUMENT naming `option` for an unknown name.
Precision parse_precision(const std::string& name, const std::string& option = "--precisions");
std::string precision_name(Precision precision);

// nullopt when `device` runs `precision` in this build, else why not (one sentence naming the device).
std::optional<std::string> precision_unsupported_reason(const DeviceDescription& device, Precision precision);

// Whether this CPU executes AVX512-BF16 instructions (bf16 dot products with fp32 accumulation).
bool cpu_has_avx512_bf16();

}  // namespace nlpf
