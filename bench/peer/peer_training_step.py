#!/usr/bin/env python3
"""Peer side of the training-step benchmark: one bert-base-shape training step in PyTorch eager (issue 12 item 6).

The step nlpf's bench/gpu_training_bench times, written as transformers' Trainer runs it (training_step, then
the outer loop): model.train(); loss = model(**batch).loss (under torch.autocast("cuda", bfloat16) for bf16);
loss.backward(); clip_grad_norm_(parameters, 1.0); optimizer.step(); scheduler.step(); model.zero_grad()
(grads set to None). Model: BertForSequenceClassification of --config-dir with num_labels=2, random init after
torch.manual_seed(42) (transformers' _init_weights), dropout as config.json, fp32 parameters (bf16 autocast keeps
fp32 master weights). Optimizer: the Trainer's adamw_torch (torch.optim.AdamW, betas 0.9/0.999, eps 1e-8, lr
3e-5, weight decay 0.01 on all but biases and LayerNorm) or adamw_torch_fused (--optim); linear schedule with
ceil(0.06 x total steps) warm-up. Data: --distinct-batches batches of B x T random ids (seed 42, uniform in
[1000, vocab_size)), attention mask all 1, token type 0, random labels, built on the GPU before anything runs;
every token is real, so neither side skips padding work (the study's max-length shape).
Precisions: fp32 (TF32 off: cuda.matmul.allow_tf32 = cudnn.allow_tf32 = False, matmul precision "highest"),
tf32 (both on, "high"), bf16 (autocast bf16; TF32 off outside it). Engines: eager, and compile
(torch.compile(model), inductor's default mode, the Trainer's torch_compile=True; compiled during the warm-up).
Protocol per point, as nlpf's: idle baseline (--idle-seconds, model resident, NVML total-energy counter) ->
--warmup-steps -> --trials trials of --steps steps, synchronised at both ends: wall clock (primary), CUDA events
around each step, energy counter. The host does not wait inside a step (the loss is read once at the end),
unless --host-sync-per-step (nlpf's Optimizer::step reads the loss and the gradient norm every step).
--gpu-warmup-seconds of bf16 matmul load first (a fresh H200 draws ~28% more power for its first ~22 s).
--kernel-profile-steps N: N more steps under torch.profiler after the trials; the record gets the kernel time by
kind per step, the table bench/report_kernel_profile.py makes of nlpf's ncu profile.
Usage: peer_training_step.py --config-dir DIR [--precisions fp32 tf32 bf16] [--engines eager compile] [--out FILE]
       peer_training_step.py --config-dir DIR --dry-run   (the plan; needs no torch)
"""

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nvml_energy import Nvml  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from report_kernel_profile import kind_of  # noqa: E402
from peer_gpu_inference import (dumps_by_line, gpu_warmup, idle_power_w, log, reset_compiler,  # noqa: E402
                                set_precision, write_report)

PRECISIONS = ("fp32", "tf32", "bf16")
ENGINES = ("eager", "compile")
OPTIMS = ("adamw_torch", "adamw_torch_fused")
SEED = 42
FIRST_WORD_ID = 1000  # past bert-base-uncased's [unused*] and special tokens, as nlpf's bench
WARMUP_RATIO = 0.06
# NVML clocks-event reasons that mean "slower than the card would otherwise run" (SW power cap, HW slowdown,
# SW/HW thermal, power brake), as src/measure/energy_meter.h's kThrottleReasonsSlowdownMask.
SLOWDOWN_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


def plan(args):
    total = args.warmup_steps + args.trials * args.steps + args.kernel_profile_steps
    return {"points": [f"{p}/{e}" for p in args.precisions for e in args.engines], "total_steps": total,
            "schedule_warmup_steps": math.ceil(WARMUP_RATIO * total),
            "examples_per_step": args.batch_size, "tokens_per_step": args.batch_size * args.seq_len}


def read_config(config_dir):
    with open(os.path.join(config_dir, "config.json"), encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------------------
# GPU side (torch imported lazily so that --dry-run and --help run without it).

def build(torch, args, total_steps):
    """Model (train mode, fp32, on the GPU), optimizer and scheduler as the Trainer builds them."""
    import transformers
    from transformers import BertConfig, BertForSequenceClassification

    transformers.set_seed(SEED)
    torch.manual_seed(SEED)
    model = BertForSequenceClassification(BertConfig.from_pretrained(args.config_dir, num_labels=2))
    model = model.to("cuda").train()
    # Trainer.get_decay_parameter_names: no decay for biases and LayerNorm parameters.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if "bias" in name or "layernorm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if args.optim == "adamw_torch_fused" else {}
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8, **extra)
    warmup = math.ceil(WARMUP_RATIO * total_steps)
    try:
        from transformers import get_linear_schedule_with_warmup

        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    except ImportError:  # the same schedule (transformers.optimization's lr_lambda), should the export move
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: step / max(1, warmup) if step < warmup else
            max(0.0, (total_steps - step) / max(1, total_steps - warmup)))
    return model, optimizer, scheduler


def random_batches(torch, vocab_size, args):
    g = torch.Generator(device="cpu").manual_seed(SEED)
    shape = (args.batch_size, args.seq_len)
    batches = []
    for _ in range(args.distinct_batches):
        ids = torch.randint(FIRST_WORD_ID, vocab_size, shape, generator=g, dtype=torch.long)
        labels = torch.randint(0, 2, (args.batch_size,), generator=g, dtype=torch.long)
        batches.append({"input_ids": ids.cuda(), "attention_mask": torch.ones(shape, dtype=torch.long).cuda(),
                        "token_type_ids": torch.zeros(shape, dtype=torch.long).cuda(), "labels": labels.cuda()})
    return batches


def make_step(torch, model, optimizer, scheduler, precision, max_grad_norm):
    """One training step as the Trainer runs it; returns the loss and gradient norm as GPU tensors."""
    params = [p for p in model.parameters() if p.requires_grad]

    def step(batch):
        if precision == "bf16":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(**batch).loss
        else:
            loss = model(**batch).loss
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        scheduler.step()
        model.zero_grad(set_to_none=True)
        return loss.detach(), grad_norm.detach()

    return step


def measure(torch, nvml, precision, engine, args, vocab_size):
    total_steps = args.warmup_steps + args.trials * args.steps + args.kernel_profile_steps
    set_precision(torch, precision)  # fp32 and bf16: TF32 off; tf32: on
    model, optimizer, scheduler = build(torch, args, total_steps)
    fields = {"attn_implementation": getattr(model.config, "_attn_implementation", None),
              "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
              "float32_matmul_precision": torch.get_float32_matmul_precision()}
    forward_model = torch.compile(model) if engine == "compile" else model
    step = make_step(torch, forward_model, optimizer, scheduler, precision, args.max_grad_norm)
    batches = random_batches(torch, vocab_size, args)
    index = 0

    def one_step():
        nonlocal index
        out = step(batches[index])
        index = (index + 1) % len(batches)
        if args.host_sync_per_step:
            float(out[0].item()), float(out[1].item())
        return out

    idle_w = idle_power_w(torch, nvml, args.idle_seconds) if args.idle_seconds > 0 else None
    started = time.perf_counter()
    first_step_s = None
    for _ in range(args.warmup_steps):
        one_step()
        if first_step_s is None:
            torch.cuda.synchronize()
            first_step_s = time.perf_counter() - started  # about the compile time under compile
    torch.cuda.synchronize()
    warmup_s = time.perf_counter() - started
    torch.cuda.reset_peak_memory_stats()

    losses, trials, reasons = [], [], 0
    last_norm = None
    for _ in range(args.trials):
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(args.steps)]
        torch.cuda.synchronize()
        energy0 = nvml.energy_j()
        t0 = time.perf_counter()
        for start, end in events:
            start.record()
            loss, last_norm = one_step()
            end.record()
            losses.append(loss)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        joules = nvml.energy_j() - energy0
        state = nvml.state()
        reasons |= state["clocks_event_reasons"] or 0
        trials.append({"seconds": seconds, "event_ms_sum": sum(s.elapsed_time(e) for s, e in events),
                       "joules": joules, **state})
    peak_mb = torch.cuda.max_memory_allocated() / 2**20
    loss_values = torch.stack(losses).float().tolist()
    if args.kernel_profile_steps > 0:
        fields["kernel_profile"] = kernel_profile(torch, one_step, args.kernel_profile_steps)

    b, k = args.batch_size, args.steps
    ms = [1000.0 * t["seconds"] / k for t in trials]
    j = [t["joules"] / k for t in trials]
    cv = (lambda v: statistics.stdev(v) / statistics.fmean(v) if len(v) > 1 and statistics.fmean(v) else None)
    fields.update({
        "ms_per_step": statistics.median(ms), "ms_per_step_cv": cv(ms),
        "ms_per_step_events": statistics.median(t["event_ms_sum"] / k for t in trials),
        "examples_per_s": 1000.0 * b / statistics.median(ms),
        "j_per_step": statistics.median(j), "j_per_example": statistics.median(j) / b, "j_per_step_cv": cv(j),
        "dynamic_j_per_example": None if idle_w is None else
        statistics.median((t["joules"] - idle_w * t["seconds"]) / k for t in trials) / b,
        "avg_power_w": statistics.median(t["joules"] / t["seconds"] for t in trials), "idle_power_w": idle_w,
        "peak_memory_mb": peak_mb, "warmup_s": warmup_s, "first_step_s": first_step_s,
        "first_loss": loss_values[0], "last_loss": loss_values[-1],
        "losses_finite": all(math.isfinite(x) for x in loss_values),
        "last_grad_norm": float(last_norm.item()), "throttled": bool(reasons & SLOWDOWN_MASK),
        "clocks_event_reasons": reasons, "trial_data": trials,
    })
    return fields


def kernel_profile(torch, one_step, steps):
    """The GPU kernels of `steps` more steps (torch.profiler, CUDA activity only; after the timed trials, so
    they do not perturb them): per step, the kernel count and time by kind (bench/report_kernel_profile.py's
    kinds, the table nlpf's ncu profile gets) and the 25 largest kernels."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            one_step()
        torch.cuda.synchronize()
    kernels = {}
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA and not e.name.startswith(("Memcpy", "Memset")):
            count, us = kernels.get(e.name, (0, 0.0))
            kernels[e.name] = (count + 1, us + e.time_range.elapsed_us())
    by_kind = {}
    for name, (count, us) in kernels.items():
        kind = kind_of(name)
        k_count, k_us = by_kind.get(kind, (0, 0.0))
        by_kind[kind] = (k_count + count, k_us + us)
    total_ms = sum(us for _, us in kernels.values()) / 1000.0 / steps
    return {
        "steps": steps, "source": "torch.profiler CUDA kernel events (CUPTI), per step",
        "kernels_per_step": sum(c for c, _ in kernels.values()) / steps, "kernel_ms_per_step": total_ms,
        "by_kind": [{"kind": k, "ms": us / 1000.0 / steps, "kernels": c / steps}
                    for k, (c, us) in sorted(by_kind.items(), key=lambda kv: -kv[1][1])],
        "largest": [{"name": n[:300], "ms": us / 1000.0 / steps, "launches": c / steps}
                    for n, (c, us) in sorted(kernels.items(), key=lambda kv: -kv[1][1])[:25]],
    }


def empty_record(precision, engine, args):
    return {"engine": f"pytorch_{engine}", "compile": engine == "compile", "model": "bert_base",
            "precision": precision, "autocast": "bfloat16" if precision == "bf16" else None,
            "batch_size": args.batch_size, "seq_len": args.seq_len, "warmup_steps": args.warmup_steps,
            "steps_per_trial": args.steps, "trials": args.trials, "optim": args.optim,
            "host_sync_per_step": args.host_sync_per_step, "ms_per_step": None, "examples_per_s": None,
            "j_per_step": None, "j_per_example": None, "peak_memory_mb": None, "error": None}


def run(args, config, the_plan):
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this peer measures GPU training (use --dry-run for the plan)")
    nvml = Nvml(torch)
    report = {
        "tool": "pytorch", "torch": torch.__version__, "transformers": transformers.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(), **nvml.device_info(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": os.path.abspath(os.path.join(args.config_dir, "config.json")),
        "shape": {k: config.get(k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                             "intermediate_size", "vocab_size")}
        | {"batch_size": args.batch_size, "seq_len": args.seq_len},
        "data": f"random ids (torch.Generator seed {SEED}, uniform in [{FIRST_WORD_ID}, vocab_size)), attention "
                f"mask all 1, token type 0, random labels; {args.distinct_batches} distinct batches cycled",
        "recipe": f"{args.optim} lr {args.learning_rate:g} (linear, {WARMUP_RATIO:.0%} warm-up) wd "
                  f"{args.weight_decay:g} (not on biases/LayerNorm), clip {args.max_grad_norm:g}, dropout on",
        "protocol": {"warmup_steps": args.warmup_steps, "steps_per_trial": args.steps, "trials": args.trials,
                     "idle_seconds": args.idle_seconds, "gpu_warmup_seconds": args.gpu_warmup_seconds},
        "plan": the_plan, "complete": False, "records": [],
    }
    started = time.perf_counter()
    if args.gpu_warmup_seconds > 0:
        log(f"GPU warm-up: {args.gpu_warmup_seconds:g} s of matmul load on {report['gpu']}")
        gpu_warmup(torch, args.gpu_warmup_seconds)
    for precision in args.precisions:
        for engine in args.engines:
            record = empty_record(precision, engine, args)
            point_started = time.perf_counter()
            try:
                record.update(measure(torch, nvml, precision, engine, args, config["vocab_size"]))
            except Exception as exc:  # noqa: BLE001 - OOM, compile or CUDA failure: record it and go on
                record["error"] = f"{type(exc).__name__}: {str(exc).strip()[:2000]}"
            if engine == "compile":
                reset_compiler(torch)
            gc.collect()
            torch.cuda.empty_cache()
            report["records"].append(record)
            write_report(report, args.out)
            where = f"pytorch {precision} {engine} b{args.batch_size} t{args.seq_len}"
            if record["error"]:
                log(f"{where}: ERROR {record['error'][:200]}")
            else:
                log(f"{where}: {record['ms_per_step']:.2f} ms/step, {record['j_per_step']:.2f} J/step, "
                    f"{record['avg_power_w']:.0f} W, peak {record['peak_memory_mb']:.0f} MiB, loss "
                    f"{record['first_loss']:.3f} -> {record['last_loss']:.3f} "
                    f"({time.perf_counter() - point_started:.1f} s)")
                if "kernel_profile" in record:
                    kp = record["kernel_profile"]
                    log(f"{where}: {kp['kernels_per_step']:.0f} kernels, {kp['kernel_ms_per_step']:.3f} ms of kernel "
                        "time a step: " + ", ".join(f"{k['kind']} {k['ms']:.3f}" for k in kp["by_kind"]))
    report["complete"] = True
    report["wall_seconds"] = time.perf_counter() - started
    return write_report(report, args.out)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-dir", required=True, help="directory of a BERT config.json (bert-base-uncased's)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=["eager"],
                        help="eager (the issue's peer) and/or compile (torch.compile of the model)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--distinct-batches", type=int, default=8, help="random batches cycled through")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed steps first (compilation too)")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per trial")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--gpu-warmup-seconds", type=float, default=25.0,
                        help="bf16 matmul load before the first point (a fresh H200 draws ~28%% more at first)")
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--optim", choices=OPTIMS, default="adamw_torch",
                        help="adamw_torch: torch.optim.AdamW (for-each kernels), the Trainer's default; "
                             "adamw_torch_fused: fused=True")
    parser.add_argument("--host-sync-per-step", action="store_true",
                        help="read the loss and gradient norm on the host every step, as nlpf's Optimizer does")
    parser.add_argument("--kernel-profile-steps", type=int, default=0,
                        help="after the trials, this many steps under torch.profiler: kernel time by kind")
    parser.add_argument("--out", help="also write the JSON here (rewritten after every record)")
    parser.add_argument("--dry-run", action="store_true", help="read the config and print the plan; no torch")
    args = parser.parse_args(argv)
    for name in ("batch_size", "distinct_batches", "steps", "trials"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup_steps < 0 or args.idle_seconds < 0 or args.seq_len < 2 or args.kernel_profile_steps < 0:
        parser.error("--warmup-steps, --idle-seconds and --kernel-profile-steps must be >= 0, --seq-len at least 2")
    if "compile" in args.engines and args.warmup_steps < 3:
        parser.error("--engines compile needs --warmup-steps >= 3 (compilation happens in the first steps)")
    return args


def main():
    args = parse_args()
    config = read_config(args.config_dir)
    if args.seq_len > config.get("max_position_embeddings", 512):
        raise SystemExit(f"--seq-len {args.seq_len} exceeds max_position_embeddings of {args.config_dir}")
    the_plan = plan(args)
    log(f"plan: {len(the_plan['points'])} points ({', '.join(the_plan['points'])}), {the_plan['total_steps']} "
        f"steps each, batch {args.batch_size} x {args.seq_len}")
    if args.dry_run:
        print(dumps_by_line({"dry_run": True, "config": args.config_dir, "plan": the_plan,
                             "vocab_size": config.get("vocab_size"), "hidden_size": config.get("hidden_size"),
                             "num_hidden_layers": config.get("num_hidden_layers")}))
        return
    print(run(args, config, the_plan))


if __name__ == "__main__":
    main()
