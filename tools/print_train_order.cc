// Prints the order in which `nlpf phase1` visits training examples in one epoch, one 0-based example index
// per line, so a reference script (tools/hf_finetune_reference.py --order-file) can train on the same
// sentences in the same order. Usage: print_train_order NUM_EXAMPLES SEED EPOCH(1-based)
#include <cstdio>
#include <cstdlib>
#include <string>

#include "text/batching.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: print_train_order NUM_EXAMPLES SEED EPOCH\n");
    return 2;
  }
  const int64_t n = std::stoll(argv[1]);
  const uint64_t seed = std::stoull(argv[2]);
  const int epoch = std::stoi(argv[3]);
  for (int64_t index : nlpf::shuffled_order(n, nlpf::epoch_shuffle_seed(seed, epoch))) {
    std::printf("%lld\n", static_cast<long long>(index));
  }
  return 0;
}
