// libFuzzer target: arbitrary bytes through the TSV dataset reader (parse_dataset, format TSV); the first
// byte selects reader options (dataset_fuzz_common.h).
#include "dataset_fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return nlpf::fuzz::fuzz_dataset(data, size, nlpf::DatasetFormat::TSV, "fuzz.tsv");
}
