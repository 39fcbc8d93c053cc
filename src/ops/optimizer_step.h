// The scalars of a training step kept in the context's memory (device memory on CUDA, host memory on the
// CPU), so that a CUDA step never waits for the host: the loss, the gradient norm, the loss scale, the update
// counters and AdamW's per-step scalars live in one OptimizerStepState; decide_step turns this step's loss
// and norm into the skip decision, the learning rate, GradScaler's scale update and a StepRecord, all on the
// device. The host reads the records in bulk (train/optimizer.h). Plain structs: the same bytes on both
// sides.
#pragma once

#include <cstdint>

#include "backend/context.h"

namespace nlpf::ops {

// What AdamW reads from the context's memory (ops/adamw.h's step-scalar form).
struct AdamWStepScalars {
  double learning_rate;         // this update's
  int64_t step;                 // AdamW's step count, from 1 (this update included)
  int64_t skip;                 // 1: no update this step (overflow, non-finite loss or norm, or halted)
  float decay;                  // 1 - lr wd, rounded to f32 as adamw_cpu.cc does (for a decayed parameter)
  float step_size;              // lr / (1 - beta1^step), rounded to f32
  float bias_correction2_sqrt;  // sqrt(1 - beta2^step), rounded to f32
  float grad_scale = 1;         // each gradient element is multiplied by this (f32) before the update: the
                                // step's clip factor with 1 / loss scale (clip_grad_norm BY_READER)
};

// Why a step made no update besides a loss-scaling overflow.
enum class StepError : int32_t { NONE = 0, LOSS_NOT_FINITE = 1, NORM_NOT_FINITE = 2, AFTER_FAILURE = 3 };

struct OptimizerStepState {
  double loss;                         // this step's mean loss (the TRAIN forward writes it)
  double grad_norm;                    // before clipping, unscaled (clip_grad_norm writes it)
  double loss_scale;                   // this step's scale (backward and clipping read it); 1 without
  double clip_factor;                  // clip_grad_norm's factor: what the gradients are multiplied by
  int64_t updates_done;                // steps that updated the parameters
  int64_t updates_since_scale_change;  // GradScaler's growth tracker
  int64_t failed_step;  // -1, or the first step with a non-finite loss (or norm, without loss scaling)
  int64_t step;         // the step being made (0-based, skipped ones count): its dropout masks and ring slot
  AdamWStepScalars adamw;
};

// One step's results as the host reads them (the ring buffer of train/optimizer.cc).
struct StepRecord {
  int64_t step;          // 0-based
  double loss;           // the forward's
  double grad_norm;      // before clipping, unscaled
  double learning_rate;  // the one this update used (or would have)
  double loss_scale;     // this step's
  int32_t skipped;       // 1: the gradients overflowed under loss scaling, no update
  StepError error;       // NONE, or why the step failed (raised as NUMERIC by the host)
};

// The settings decide_step applies (host values, passed by value to the kernel).
struct OptimizerStepConstants {
  double peak_learning_rate;
  int64_t warmup_steps, total_steps;  // linear warm-up then linear decay (train/lr_schedule.h)
  double beta1, beta2, eps, weight_decay;
  int64_t loss_scaling;  // 1: GradScaler's rule below, 0: a non-finite norm is an error
  double growth, backoff;
  int64_t growth_interval;
  // [total_steps + 1] in the context's memory: 1 - beta1^s and 1 - beta2^s for s = 0..total_steps, computed
  // on the host with std::pow (CUDA's pow may differ from glibc's by an ulp; these are the CPU's bits).
  const double* bias_correction1;
  const double* bias_correction2;
};

// After the forward (state->loss), backward and clip_grad_norm (state->grad_norm) of step `step`, in order:
// - the learning rate of update updates_done, in double as linear_warmup_decay_lr (the same operations);
// - a non-finite loss, or a non-finite norm without loss scaling, is an error: failed_step = step, no update
//   here nor at any later step (AFTER_FAILURE) until the host raises it;
// - a non-finite norm with loss scaling skips the step (no update, counters held) and multiplies the scale by
//   backoff; an update multiplies it by growth after growth_interval updates in a row;
// - state->adamw is this step's AdamW scalars (skip set when no update), the counters advance on an update;
// - ring[step % ring_steps] (context memory) gets the step's results with the scale this step used;
// - state->step advances to the next step.
// The step is state->step, read when the work runs, so a captured training step replays as the next one.
// No wait for the host on CUDA (one thread of one block).
void decide_step(ExecutionContext& ctx, OptimizerStepState* state, StepRecord* ring, int64_t ring_steps,
                 const OptimizerStepConstants& constants);

}  // namespace nlpf::ops
