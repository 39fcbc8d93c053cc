// The CUDA-events BatchTimer and a spin kernel of known duration that checks it, declared without CUDA
// headers (streams travel as void*, a cudaStream_t underneath) so that device.cc can reach them.
#pragma once

#include <memory>

#include "measure/batch_timer.h"

namespace nlpf::cuda {

// Records a pair of events per batch on `stream` (nullptr: the legacy default stream) of device
// `device_index`; finish() waits on the last end event only. Events are created once and reused by later
// passes. Throws Error(CUDA) when the device or an event cannot be set up.
std::unique_ptr<BatchTimer> make_event_batch_timer(int device_index, void* stream);

// Enqueues one single-thread kernel on `stream` that spins until the device's global timer has advanced by
// `microseconds`: device work of a known minimum duration, with no host involvement.
void enqueue_spin(int device_index, double microseconds, void* stream);
// Waits for all work on `device_index`; throws Error(CUDA) with the first asynchronous error.
void synchronize(int device_index);

}  // namespace nlpf::cuda
