#!/usr/bin/env python3
"""Peer side of the GPU inference benchmark: PyTorch + Hugging Face transformers on the SST-2 dev set.

The same batches and the same measurement protocol as `nlpf` (DESIGN.md sections 6 and 8), one JSON record per
point; bench/peer/README.md gives the command of the side-by-side comparison.

Batches: every dev sentence tokenized once with BertTokenizer ([CLS] tokens [SEP], truncated to --max-length),
then consecutive slices of batch_size in file order (the last one smaller): `max_length` pads every batch to
--max-length, `longest` pads each batch to its longest row (`bucketed`, optional: sorted longest first, ties in
file order, then padded as `longest`, as nlpf's evaluation bucketing). [PAD] = 0, token type 0, attention mask
1 on real tokens. All batches are built on the GPU before anything is timed.
Models: bert_base = BertForSequenceClassification of the config at --config-dir, random init (seed 42);
minilm = the checkpoint at --minilm-dir in float32 with a random classifier head (seed 42). Energy and latency
do not depend on the weights. Precisions: fp32 (no TF32), tf32, and bf16 / fp16 as pure 16-bit weights and
activations (model.to(dtype)). Attention: transformers' default (sdpa). Engines: eager, and torch.compile per
--compile-modes (static shapes by default: one graph per padded shape, compiled during the warm-up).
One measurement (model x precision x engine[/mode] x batch size x padding), DESIGN section 6:
  idle baseline (model resident, --idle-seconds, NVML total-energy counter) -> warm-up (>= --warmup-seconds and
  >= 2 passes, 3 when compiled) -> --trials trials, each repeating full passes over the 872 examples for
  >= --min-trial-seconds (synchronized per pass, energy counter read at trial start and end) -> one extra pass
  with CUDA events around each batch for per-batch latency percentiles.
Reported: medians across trials of J/example and ms/example, 95% t-interval of the mean J/example, its
coefficient of variation, dynamic J/example (total - idle power x time), peak max_memory_allocated, accuracy
(every pass must give the same correct count). A failure (OOM, compile error) becomes a record with "error".
Usage: peer_gpu_inference.py --dev-tsv FILE --vocab-dir DIR --config-dir DIR [--minilm-dir DIR] [--out FILE]
       peer_gpu_inference.py --dev-tsv FILE --vocab-dir DIR --dry-run   (batches and plan only; needs no torch)
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
from nvml_energy import Nvml  # noqa: E402  (bench/peer/nvml_energy.py: pynvml, else ctypes)

MODELS = ("bert_base", "minilm")
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
ENGINES = ("eager", "compile")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
PADDINGS = ("max_length", "longest", "bucketed")
CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")  # torch.compile modes that replay CUDA graphs
SEED = 42
HIGH_CV = 0.03  # DESIGN section 6: flag a coefficient of variation above 3%
# Two-sided 95% Student t quantiles t(0.975, df), df = 1..30; 1.96 above.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
# Rough planning costs in seconds (printed estimate only; nothing depends on them).
EST_BUILD_S = 1.5
EST_FIRST_COMPILE_S = 20.0
EST_RECOMPILE_S = 6.0


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# Data: tokenization and host-side batches (no torch needed).

def read_dev_tsv(path):
    """Sentences and integer labels of a GLUE-style TSV with a `sentence` and a `label` column."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        sentence_col, label_col = header.index("sentence"), header.index("label")
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return [r[sentence_col] for r in rows], [int(r[label_col]) for r in rows]


def load_tokenizer(vocab_dir):
    # from_pretrained, not BertTokenizer(vocab_file=...): transformers 5 ignores vocab_file in the constructor
    # and silently builds a 5-token vocabulary.
    from transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(vocab_dir, do_lower_case=True)
    got = tokenizer("hello world")["input_ids"]
    if got != [101, 7592, 2088, 102]:
        raise SystemExit(f"tokenizer in {vocab_dir} did not load bert-base-uncased's vocabulary: "
                         f"'hello world' -> {got}")
    return tokenizer


def tokenize(tokenizer, sentences, max_length):
    """Token ids per sentence: [CLS] tokens [SEP], at most max_length of them, unpadded."""
    return tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"]


def example_order(encodings, padding):
    """File order, or (bucketed) longest first with ties in file order, as nlpf's bucketed_order(seed=none)."""
    order = list(range(len(encodings)))
    if padding == "bucketed":
        order.sort(key=lambda i: -len(encodings[i]))  # list.sort is stable
    return order


def host_batches(encodings, labels, batch_size, padding, max_length, pad_id):
    """Consecutive groups of batch_size examples as dicts of Python lists: input_ids / attention_mask (B, T),
    labels (B); T = max_length or the group's longest row."""
    order = example_order(encodings, padding)
    batches = []
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = max_length if padding == "max_length" else max(len(encodings[i]) for i in rows)
        ids, mask = [], []
        for i in rows:
            tokens = encodings[i]
            ids.append(tokens + [pad_id] * (width - len(tokens)))
            mask.append([1] * len(tokens) + [0] * (width - len(tokens)))
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": [labels[i] for i in rows],
                        "T": width})
    return batches


def batch_summary(batches):
    shapes = sorted({(len(b["labels"]), b["T"]) for b in batches})
    return {"batches": len(batches), "examples": sum(len(b["labels"]) for b in batches),
            "lengths": sorted({b["T"] for b in batches}), "distinct_shapes": len(shapes),
            "padded_tokens": sum(len(b["labels"]) * b["T"] for b in batches),
            "real_tokens": sum(sum(map(sum, b["attention_mask"])) for b in batches)}


# ---------------------------------------------------------------------------------------------------------
# Plan.

def engine_variants(args):
    """(engine, compile_mode) pairs, eager first."""
    variants = [("pytorch_eager", None)] if "eager" in args.engines else []
    if "compile" in args.engines:
        variants += [("pytorch_compile", mode) for mode in args.compile_modes]
    return variants


def plan_points(args):
    """Every measurement, in run order: per model, eager before compile (compilation is the slow and risky
    part, so a run cut short by --deadline-seconds keeps the eager points), then precision, batch size,
    padding."""
    return [{"engine": engine, "compile_mode": mode, "model": model, "precision": precision,
             "batch_size": batch_size, "padding": padding}
            for model in args.models
            for engine, mode in engine_variants(args)
            for precision in args.precisions
            for batch_size in args.batch_sizes
            for padding in args.paddings]


def estimate_seconds(points, summaries, args):
    """A rough wall-time estimate of the sweep: the protocol's fixed waits plus guessed build/compile costs."""
    total = args.gpu_warmup_seconds
    for p in points:
        warmup = args.warmup_seconds
        if p["engine"] == "pytorch_compile":  # compilation happens in the warm-up passes
            shapes = summaries[(p["batch_size"], p["padding"])]["distinct_shapes"]
            recompiles = shapes - 1 if args.compile_shapes == "static" else 0
            warmup = max(warmup, EST_FIRST_COMPILE_S + EST_RECOMPILE_S * recompiles)
        total += EST_BUILD_S + args.idle_seconds + warmup + args.trials * args.min_trial_seconds + 0.5
    return total


# ---------------------------------------------------------------------------------------------------------
# Statistics.

def mean_ci95(values):
    """95% t-interval of the mean; (None, None) for fewer than two values."""
    if len(values) < 2:
        return None, None
    mean = statistics.fmean(values)
    t = T_975[len(values) - 2] if len(values) - 1 <= len(T_975) else 1.96
    half = t * statistics.stdev(values) / math.sqrt(len(values))
    return mean - half, mean + half


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ---------------------------------------------------------------------------------------------------------
# GPU side (torch imported lazily so that --dry-run runs without it).

def gpu_warmup(torch, seconds):
    """Matmul load for `seconds`: a fresh H200 draws more power during its first ~22 s of work."""
    if seconds <= 0:
        return
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(20):
            a = torch.nn.functional.normalize(a @ a, dim=-1)  # normalized so values stay finite
        torch.cuda.synchronize()
    del a
    torch.cuda.empty_cache()


def set_precision(torch, precision):
    """Global matmul settings for the precision; returns the model dtype."""
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    return {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def build_model(torch, name, args, dtype):
    """The model on the GPU in eval mode, cast to dtype; random weights where the checkpoint has none."""
    from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

    torch.manual_seed(SEED)
    if name == "bert_base":
        model = BertForSequenceClassification(BertConfig.from_pretrained(args.config_dir, num_labels=2))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(args.minilm_dir, num_labels=2,
                                                                   dtype=torch.float32)
    return model.eval().to("cuda").to(dtype)


def raise_recompile_limits(torch, graphs_needed):
    """Static shapes compile one graph per padded shape: keep Dynamo from giving up on them, and make it fail
    (an error record) rather than silently run eager if a limit is hit anyway."""
    config = torch._dynamo.config
    limit = max(64, graphs_needed + 8)
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), limit))
    for name in ("accumulated_recompile_limit", "accumulated_cache_size_limit"):
        if hasattr(config, name):
            setattr(config, name, max(getattr(config, name), 4 * limit))
    for name in ("fail_on_recompile_limit_hit", "fail_on_cache_limit_hit"):
        if hasattr(config, name):
            setattr(config, name, True)


def reset_compiler(torch):
    """Forget compiled graphs and recorded CUDA graphs so the next measurement starts clean."""
    torch._dynamo.reset()
    try:
        from torch._inductor import cudagraph_trees

        cudagraph_trees.reset_cudagraph_trees()
    except (ImportError, AttributeError):
        pass


def device_batches(torch, batches, compile_shapes):
    """(input_ids, attention_mask, token_type_ids, labels) int64 tensors on the GPU, per batch."""
    out = []
    for b in batches:
        ids = torch.tensor(b["input_ids"], dtype=torch.long, device="cuda")
        mask = torch.tensor(b["attention_mask"], dtype=torch.long, device="cuda")
        types = torch.zeros_like(ids)
        if compile_shapes == "dynamic":  # one graph with a symbolic sequence length (CUDA graphs per shape)
            for t in (ids, mask, types):
                torch._dynamo.maybe_mark_dynamic(t, 1)
        out.append((ids, mask, types, torch.tensor(b["labels"], dtype=torch.long, device="cuda")))
    return out


def run_pass(torch, model, batches, step_marker, events=None):
    """One pass over the dev set; the correct count is accumulated on the GPU and read once at the end.
    With events (a list of (start, end) CUDA event pairs, one per batch) each batch is bracketed by them."""
    correct = torch.zeros((), dtype=torch.long, device="cuda")
    for i, (ids, mask, types, labels) in enumerate(batches):
        if events is not None:
            events[i][0].record()
        if step_marker is not None:
            step_marker()  # a new CUDA-graph generation per call: outputs are consumed before the next one
        logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        correct += (logits.argmax(-1) == labels).sum()
        if events is not None:
            events[i][1].record()
    torch.cuda.synchronize()
    return int(correct.item())


def idle_power_w(torch, nvml, seconds):
    torch.cuda.synchronize()
    energy0, started = nvml.energy_j(), time.perf_counter()
    time.sleep(seconds)
    elapsed, energy1 = time.perf_counter() - started, nvml.energy_j()
    return (energy1 - energy0) / elapsed


def warm_up(run, min_seconds, min_passes):
    """Full passes until both minimums are met; returns (passes, seconds, first pass seconds)."""
    started = time.perf_counter()
    passes, first = 0, None
    while passes < min_passes or time.perf_counter() - started < min_seconds:
        run()
        passes += 1
        if first is None:
            first = time.perf_counter() - started
    return passes, time.perf_counter() - started, first


def run_trial(torch, nvml, run, min_seconds):
    """Full passes until min_seconds have passed; energy read before the clock starts and after it stops."""
    torch.cuda.synchronize()
    energy0 = nvml.energy_j()
    started = time.perf_counter()
    counts = []
    while True:
        counts.append(run())
        if time.perf_counter() - started >= min_seconds:
            break
    seconds = time.perf_counter() - started
    joules = nvml.energy_j() - energy0
    return {"seconds": seconds, "joules": joules, "passes": len(counts), "correct": counts}


def summarise(trials, idle_w, examples_per_pass):
    per_trial = []
    for t in trials:
        examples = t["passes"] * examples_per_pass
        per_trial.append({"j": t["joules"] / examples, "ms": 1000.0 * t["seconds"] / examples,
                          "w": t["joules"] / t["seconds"],
                          "dyn_j": (t["joules"] - idle_w * t["seconds"]) / examples})
    j = [p["j"] for p in per_trial]
    ci_low, ci_high = mean_ci95(j)
    cv = statistics.stdev(j) / statistics.fmean(j) if len(j) > 1 else None
    ms = statistics.median(p["ms"] for p in per_trial)
    return {"j_per_example": statistics.median(j), "j_per_example_mean": statistics.fmean(j),
            "j_per_example_ci_low": ci_low, "j_per_example_ci_high": ci_high, "j_per_example_cv": cv,
            "high_cv": None if cv is None else cv > HIGH_CV,
            "dynamic_j_per_example": statistics.median(p["dyn_j"] for p in per_trial),
            "ms_per_example": ms, "ms_per_example_ci": list(mean_ci95([p["ms"] for p in per_trial])),
            "examples_per_s": 1000.0 / ms, "avg_power_w": statistics.median(p["w"] for p in per_trial)}


def measure(torch, nvml, point, batches, args):
    """One measurement (DESIGN section 6) of `point` on the host batches; returns the record's fields."""
    compiled = point["engine"] == "pytorch_compile"
    dtype = set_precision(torch, point["precision"])
    model = build_model(torch, point["model"], args, dtype)
    fields = {"attn_implementation": getattr(model.config, "_attn_implementation", None)}
    gpu_batches = device_batches(torch, batches, args.compile_shapes if compiled else "static")
    step_marker = None
    if compiled:
        shapes = len({tuple(b[0].shape) for b in gpu_batches})
        raise_recompile_limits(torch, shapes)
        model = torch.compile(model, mode=point["compile_mode"], dynamic=None if args.compile_shapes == "dynamic"
                              else False)
        if point["compile_mode"] in CUDAGRAPH_MODES:
            step_marker = torch.compiler.cudagraph_mark_step_begin
    examples_per_pass = sum(len(b[3]) for b in gpu_batches)

    with torch.inference_mode():
        def one_pass(events=None):
            return run_pass(torch, model, gpu_batches, step_marker, events)

        idle_w = idle_power_w(torch, nvml, args.idle_seconds)
        warmup_passes, warmup_s, first_pass_s = warm_up(one_pass, args.warmup_seconds, 3 if compiled else 2)
        torch.cuda.reset_peak_memory_stats()
        trials = [run_trial(torch, nvml, one_pass, args.min_trial_seconds) for _ in range(args.trials)]
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
        state = nvml.state()
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in gpu_batches]
        latency_correct = one_pass(events)
        batch_ms = [start.elapsed_time(end) for start, end in events]

    counts = [c for t in trials for c in t["correct"]] + [latency_correct]
    fields.update(summarise(trials, idle_w, examples_per_pass))
    fields.update({
        "examples_per_pass": examples_per_pass, "batches_per_pass": len(gpu_batches),
        "accuracy": trials[0]["correct"][0] / examples_per_pass, "correct": trials[0]["correct"][0],
        "prediction_mismatch": len(set(counts)) > 1, "idle_power_w": idle_w,
        "latency_p50_ms": percentile(batch_ms, 50), "latency_p90_ms": percentile(batch_ms, 90),
        "latency_p99_ms": percentile(batch_ms, 99), "peak_memory_mb": peak_mb, "trials": len(trials),
        "warmup_passes": warmup_passes, "warmup_s": warmup_s, "first_pass_s": first_pass_s,
        "trial_data": [{k: t[k] for k in ("seconds", "joules", "passes")} for t in trials], **state,
    })
    return fields


def empty_record(point, args, summary):
    return {**point, "max_length": args.max_length, "examples_per_pass": summary["examples"],
            "batches_per_pass": summary["batches"], "shapes": summary["lengths"],
            "distinct_shapes": summary["distinct_shapes"],
            "compile_shapes": args.compile_shapes if point["engine"] == "pytorch_compile" else None,
            "fastest_compile_mode": None, "accuracy": None, "j_per_example": None, "j_per_example_ci_low": None,
            "j_per_example_ci_high": None, "j_per_example_cv": None, "dynamic_j_per_example": None,
            "ms_per_example": None, "examples_per_s": None, "avg_power_w": None, "idle_power_w": None,
            "latency_p50_ms": None, "latency_p90_ms": None, "latency_p99_ms": None, "peak_memory_mb": None,
            "trials": 0, "attn_implementation": None, "error": None}


def mark_fastest_compile_modes(records):
    """fastest_compile_mode = True on the compile record with the lowest ms/example of each
    (model, precision, batch size, padding), False on the other compile records that ran."""
    best = {}
    for r in records:
        if r["engine"] == "pytorch_compile" and r["error"] is None:
            key = (r["model"], r["precision"], r["batch_size"], r["padding"])
            if key not in best or r["ms_per_example"] < best[key]["ms_per_example"]:
                best[key] = r
    for r in records:
        if r["engine"] == "pytorch_compile" and r["error"] is None:
            r["fastest_compile_mode"] = best[(r["model"], r["precision"], r["batch_size"], r["padding"])] is r


def dumps_by_line(report):
    """JSON with one top-level key per line and one line per element of a list of objects (one per record)."""
    lines = []
    for key, value in report.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            body = ",\n  ".join(json.dumps(v) for v in value)
            lines.append(f"{json.dumps(key)}: [\n  {body}\n ]")
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            body = ",\n  ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{json.dumps(key)}: {{\n  {body}\n }}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(lines) + "\n}"


def write_report(report, path):
    text = dumps_by_line(report)
    if path:
        partial = path + ".partial"
        with open(partial, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(partial, path)
    return text


def progress_line(index, total, r, seconds):
    where = (f"[{index}/{total}] {r['model']} {r['precision']} {r['engine']}"
             f"{'/' + r['compile_mode'] if r['compile_mode'] else ''} bs={r['batch_size']} {r['padding']}")
    if r["error"]:
        return f"{where}: ERROR {r['error'][:200]} ({seconds:.1f} s)"
    return (f"{where}: {r['j_per_example']:.5f} J/ex, {r['ms_per_example']:.4f} ms/ex, "
            f"{r['avg_power_w']:.0f} W, acc {r['accuracy']:.4f}, cv {r['j_per_example_cv'] or 0:.3f}, "
            f"peak {r['peak_memory_mb']:.0f} MB{' MISMATCH' if r['prediction_mismatch'] else ''} ({seconds:.1f} s)")


def run_sweep(args, points, host, summaries):
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    nvml = Nvml(torch)
    report = {
        "tool": "pytorch", "torch": torch.__version__, "transformers": transformers.__version__,
        "cuda": torch.version.cuda, "python": platform.python_version(), **nvml.device_info(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "protocol": {"trials": args.trials, "min_trial_seconds": args.min_trial_seconds,
                     "idle_seconds": args.idle_seconds, "warmup_seconds": args.warmup_seconds,
                     "gpu_warmup_seconds": args.gpu_warmup_seconds, "compile_shapes": args.compile_shapes},
        "fp16_reduced_precision_reduction": getattr(torch.backends.cuda.matmul,
                                                    "allow_fp16_reduced_precision_reduction", None),
        "bf16_reduced_precision_reduction": getattr(torch.backends.cuda.matmul,
                                                    "allow_bf16_reduced_precision_reduction", None),
        "complete": False, "records": [],
    }
    started = time.perf_counter()
    log(f"GPU warm-up: {args.gpu_warmup_seconds:.0f} s of matmul load on {report['gpu']}")
    gpu_warmup(torch, args.gpu_warmup_seconds)
    for index, point in enumerate(points, 1):
        key = (point["batch_size"], point["padding"])
        record = empty_record(point, args, summaries[key])
        point_started = time.perf_counter()
        if args.deadline_seconds and point_started - started > args.deadline_seconds:
            record["error"] = f"skipped: --deadline-seconds {args.deadline_seconds:g} passed"
        else:
            try:
                record.update(measure(torch, nvml, point, host[key], args))
            except Exception as exc:  # noqa: BLE001 - OOM, compile or CUDA failure: record it and go on
                record["error"] = f"{type(exc).__name__}: {str(exc).strip()[:2000]}"
            if point["engine"] == "pytorch_compile":
                reset_compiler(torch)
            gc.collect()
            torch.cuda.empty_cache()
        report["records"].append(record)
        mark_fastest_compile_modes(report["records"])
        write_report(report, args.out)
        log(progress_line(index, len(points), record, time.perf_counter() - point_started))
    report["complete"] = True
    report["wall_seconds"] = time.perf_counter() - started
    return write_report(report, args.out)


def padding_name(text):
    name = text.replace("-", "_")  # nlpf spells it max-length
    if name not in PADDINGS:
        raise argparse.ArgumentTypeError(f"padding must be one of {', '.join(PADDINGS)}")
    return name


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dev-tsv", required=True, help="SST-2 dev.tsv (sentence<TAB>label)")
    parser.add_argument("--vocab-dir", required=True, help="bert-base-uncased vocab.txt + tokenizer_config.json")
    parser.add_argument("--config-dir", help="bert-base-uncased config.json directory (model bert_base)")
    parser.add_argument("--minilm-dir", help="all-MiniLM-L6-v2 checkpoint directory (model minilm)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 64, 256])
    parser.add_argument("--paddings", nargs="+", type=padding_name, default=["max_length", "longest"],
                        help="max_length, longest, or bucketed (sorted longest first, then longest)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--compile-modes", nargs="+", choices=COMPILE_MODES,
                        default=["default", "reduce-overhead", "max-autotune-no-cudagraphs"])
    parser.add_argument("--compile-shapes", choices=("static", "dynamic"), default="static",
                        help="static: dynamic=False, one graph per padded shape (slow to compile under "
                             "longest); dynamic: sequence length marked dynamic, one graph")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--min-trial-seconds", type=float, default=5.0)
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--gpu-warmup-seconds", type=float, default=25.0)
    parser.add_argument("--deadline-seconds", type=float, default=0.0,
                        help="start no measurement after this many seconds (0: none); later points are "
                             "recorded as skipped")
    parser.add_argument("--out", help="also write the JSON here (rewritten after every record)")
    parser.add_argument("--dry-run", action="store_true", help="tokenize, batch, print the plan; no torch")
    args = parser.parse_args()
    if args.trials < 1 or args.max_length < 2 or min(args.batch_sizes) < 1:
        parser.error("--trials and --batch-sizes must be positive, --max-length at least 2")
    if "minilm" in args.models and not args.minilm_dir:
        log("no --minilm-dir: model minilm left out")
        args.models = [m for m in args.models if m != "minilm"]
    if "bert_base" in args.models and not args.config_dir and not args.dry_run:
        parser.error("model bert_base needs --config-dir")
    if "compile" not in args.engines:
        args.compile_modes = []
    return args


def main():
    args = parse_args()
    sentences, labels = read_dev_tsv(args.dev_tsv)
    tokenizer = load_tokenizer(args.vocab_dir)
    encodings = tokenize(tokenizer, sentences, args.max_length)
    host, summaries = {}, {}
    for batch_size in args.batch_sizes:
        for padding in args.paddings:
            batches = host_batches(encodings, labels, batch_size, padding, args.max_length,
                                   tokenizer.pad_token_id)
            host[(batch_size, padding)] = batches
            summaries[(batch_size, padding)] = batch_summary(batches)
    points = plan_points(args)
    estimate = estimate_seconds(points, summaries, args)
    log(f"planned measurements: {len(points)}; rough estimate {estimate:.0f} s "
        f"({EST_FIRST_COMPILE_S:g} s per compile + {EST_RECOMPILE_S:g} s per further static shape guessed)")

    if args.dry_run:
        lengths = [len(e) for e in encodings]
        print(dumps_by_line({
            "dry_run": True, "examples": len(encodings), "max_length": args.max_length,
            "pad_id": tokenizer.pad_token_id, "longest_example": max(lengths),
            "mean_length": statistics.fmean(lengths), "at_max_length": sum(n == args.max_length for n in lengths),
            "batches": {f"bs{bs}/{padding}": s for (bs, padding), s in summaries.items()},
            "planned_measurements": len(points), "estimated_seconds": round(estimate),
            "first_row_ids": next(iter(host.values()))[0]["input_ids"][0][:16],
        }))
        return
    print(run_sweep(args, points, host, summaries))


if __name__ == "__main__":
    main()
