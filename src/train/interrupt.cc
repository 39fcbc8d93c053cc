// SIGINT -> flag. The handler touches nothing but a lock-free atomic (async-signal-safe); SA_RESETHAND
// makes the kernel restore the default action before the handler runs, so the second Ctrl-C kills.
#include "train/interrupt.h"

namespace nlpf {

std::atomic<bool>& interrupt_flag() {
  static std::atomic<bool> flag{false};
  static_assert(std::atomic<bool>::is_always_lock_free);
  return flag;
}

namespace {
extern "C" void on_sigint(int /*signal*/) {
  interrupt_flag().store(true);
}
}  // namespace

SigintGuard::SigintGuard() {
  interrupt_flag().store(false);
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &action, &previous_);
}

SigintGuard::~SigintGuard() {
  sigaction(SIGINT, &previous_, nullptr);
}

}  // namespace nlpf
