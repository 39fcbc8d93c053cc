// libFuzzer target: arbitrary bytes parsed as a whole safetensors file. nlpf::Error is the expected
// outcome for malformed input; anything else (a crash, a sanitizer report, another exception) is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // Copies every tensor of a supported dtype; sizes are bounded by the input (offsets must tile it).
    const nlpf::SafetensorsFile file = nlpf::parse_safetensors(data, size, "<fuzz input>");
    size_t total = 0;
    for (const auto& [name, tensor] : file.tensors) total += tensor.nbytes() + name.size();
    if (total > size) __builtin_trap();  // a tensor claimed more bytes than the file holds
  } catch (const nlpf::Error&) {
  }
  return 0;
}
