// Ctrl-C during training: a SIGINT handler that only sets an atomic flag, which the trainer checks after
// every step (it then stops and throws Error(INTERRUPTED)); the handler resets itself to the default
// (SA_RESETHAND), so a second Ctrl-C ends the process at once.
#pragma once

#include <atomic>
#include <csignal>

namespace nlpf {

// The process's interrupt flag (a lock-free atomic, safe to set from a signal handler). Tests set it to
// simulate Ctrl-C.
std::atomic<bool>& interrupt_flag();

// Installs the handler and clears the flag for its lifetime; restores the previous handler when it dies.
class SigintGuard {
 public:
  SigintGuard();
  ~SigintGuard();
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction previous_ {};
};

}  // namespace nlpf
