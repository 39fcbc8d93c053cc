#!/usr/bin/env python3
"""Peer side of the GPU fine-tuning comparison: the Hugging Face Trainer on GLUE SST-2 (issue 12, item 5).

The reference recipe of `nlpf phase1` (DESIGN.md section 5), run by transformers' Trainer as a user would run it:
  - model: AutoModelForSequenceClassification.from_pretrained(--model, num_labels=2) in float32 (an fp16 copy
    such as carry/minilm-f16 is up-cast, as nlpf does), after transformers.set_seed(--seed), so the new
    classifier is initialised from the seed; dropout as config.json, active in training;
  - tokenizer: BertTokenizer.from_pretrained(--model) (not BertTokenizer(vocab_file=...): transformers 5 ignores
    vocab_file there and builds a 5-token vocabulary), [CLS] tokens [SEP] truncated at --max-length (128);
  - batch 32, 2 epochs, AdamW (torch; betas 0.9/0.999, eps 1e-8) with weight decay 0.01 on all but biases and
    LayerNorm (the Trainer's groups), lr 3e-5 with linear warm-up over ceil(0.06 * total steps) then linear
    decay to 0, gradient clipping at norm 1.0, seed 42, the Trainer's seeded shuffle, accuracy on the dev set
    after each epoch;
  - --padding max_length: every example padded to --max-length at tokenization (the study), default_data_collator;
    --padding longest: DataCollatorWithPadding, each batch padded to its longest example;
  - --precision fp32: IEEE fp32 (TF32 off for cuBLAS and cuDNN, matmul precision "highest");
    --precision bf16: TrainingArguments(bf16=True), bf16 autocast with fp32 master weights.
Warm-up steps: transformers 5 deprecated warmup_ratio (removed in 5.2) in favour of a float warmup_steps < 1,
which TrainingArguments.get_warmup_steps turns into ceil(ratio * total steps), the same as transformers 4's
warmup_ratio and as nlpf. This script computes ceil(warmup_ratio * total steps) itself and passes it as an
integer warmup_steps (the same number on every transformers version), and checks it against the Trainer's
own get_warmup_steps when training starts.
Measurement (DESIGN.md section 6, from a TrainerCallback, each boundary after torch.cuda.synchronize()): an
optional matmul load of --warmup-seconds (a fresh H200 draws ~28% more power during its first ~22 s of load),
an idle baseline of --idle-seconds (model resident), then NVML's total-energy counter (pynvml if importable,
else ctypes on libnvidia-ml.so.1) and the wall clock read at on_train_begin / on_train_end (the window nlpf's
training energy covers, the per-epoch evaluations included), at on_epoch_begin / on_epoch_end (training steps
only: train_seconds and train_energy_j are their sums, as nlpf's training.seconds) and at on_evaluate (the
evaluation after each epoch). Peak torch.cuda.max_memory_allocated over training.
Output: one JSON (--out, rewritten after each epoch's evaluation, so a run cut off leaves its partial results;
complete=false until the end); --log-file: step,epoch,learning_rate,loss,grad_norm every --logging-steps (50)
steps, as the Trainer logs them (loss = mean over the logging interval).
Usage: peer_finetune_trainer.py --model DIR --train-tsv FILE --dev-tsv FILE [--padding max_length|longest]
           [--precision fp32|bf16] [--out FILE] [--log-file FILE] [--max-train-examples N] [--dry-run]
"""

import argparse
import csv
import datetime
import math
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nvml_energy import Nvml  # noqa: E402  (pynvml when importable, else ctypes on libnvidia-ml.so.1)
from peer_gpu_inference import dumps_by_line, gpu_warmup, idle_power_w, log, read_dev_tsv, write_report  # noqa: E402

PADDINGS = ("max_length", "longest")
PRECISIONS = ("fp32", "bf16")
MIN_WINDOW_S = 5.0  # DESIGN section 6: the energy counter needs windows of at least 5 s of steady work


# ---------------------------------------------------------------------------------------------------------
# Plan (no torch needed).

def plan(n_train, args):
    """Steps as the Trainer counts them (one optimizer step per batch, the last batch smaller) and nlpf's
    warm-up length ceil(warmup_ratio * total steps), multiplied in that order."""
    steps_per_epoch = math.ceil(n_train / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    return {"train_examples": n_train, "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
            "warmup_steps": math.ceil(total_steps * args.warmup_ratio)}


def recipe(args):
    return {"epochs": args.epochs, "batch_size": args.batch_size, "eval_batch_size": args.eval_batch_size,
            "learning_rate": args.learning_rate, "weight_decay": args.weight_decay,
            "warmup_ratio": args.warmup_ratio, "max_grad_norm": args.max_grad_norm, "seed": args.seed,
            "max_length": args.max_length, "optim": args.optim, "lr_scheduler_type": "linear",
            "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8}


def padding_name(text):
    name = text.replace("-", "_")  # nlpf spells it max-length
    if name not in PADDINGS:
        raise argparse.ArgumentTypeError(f"padding must be one of {', '.join(PADDINGS)}")
    return name


def load_tokenizer(model_dir):
    # from_pretrained, not BertTokenizer(vocab_file=...): see the module docstring.
    from transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(model_dir)
    got = tokenizer("hello world")["input_ids"]
    if got != [101, 7592, 2088, 102]:
        raise SystemExit(f"tokenizer in {model_dir} did not load bert-base-uncased's vocabulary: "
                         f"'hello world' -> {got}")
    return tokenizer


def encode(tokenizer, sentences, labels, padding, max_length):
    """A list of feature dicts (input_ids, token_type_ids, attention_mask, labels): a map-style dataset the
    Trainer takes as it is. max_length: padded to max_length here; longest: unpadded (the collator pads)."""
    enc = tokenizer(sentences, truncation=True, max_length=max_length,
                    padding="max_length" if padding == "max_length" else False)
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
    return [{**{k: enc[k][i] for k in keys}, "labels": labels[i]} for i in range(len(sentences))]


def length_summary(features, max_length):
    """Token counts per example ([CLS] and [SEP] included): what max_length padding pads and longest saves."""
    lengths = [sum(f["attention_mask"]) for f in features]
    return {"examples": len(lengths), "longest": max(lengths), "mean_length": round(statistics.fmean(lengths), 2),
            "at_max_length": sum(n == max_length for n in lengths), "real_tokens": sum(lengths),
            "tokens_padded_to_max_length": len(lengths) * max_length}


# ---------------------------------------------------------------------------------------------------------
# The run.

def make_callback(torch, nvml, report, args, log_rows):
    """A TrainerCallback that reads the clock and the energy counter (after synchronizing) at the training,
    epoch and evaluation boundaries, keeps the Trainer's logs, and rewrites --out after every evaluation."""
    from transformers import TrainerCallback

    def mark():
        torch.cuda.synchronize()
        return time.perf_counter(), nvml.energy_j() if nvml else None

    def joules(e0, e1):
        return None if e0 is None or e1 is None else e1 - e0

    results = report["results"]

    class MeasureCallback(TrainerCallback):
        def __init__(self):
            self.train_begin = self.epoch_begin = self.epoch_end = None

        def on_train_begin(self, targs, state, control, **kwargs):
            results["trainer_max_steps"] = state.max_steps
            results["trainer_warmup_steps"] = targs.get_warmup_steps(state.max_steps)
            results["tf32_matmul"] = torch.backends.cuda.matmul.allow_tf32
            results["tf32_cudnn"] = torch.backends.cudnn.allow_tf32
            results["float32_matmul_precision"] = torch.get_float32_matmul_precision()
            self.train_begin = mark()

        def on_epoch_begin(self, targs, state, control, **kwargs):
            self.epoch_begin = mark()

        def on_epoch_end(self, targs, state, control, **kwargs):
            self.epoch_end = mark()
            t0, e0 = self.epoch_begin
            t1, e1 = self.epoch_end
            results["per_epoch"].append({"epoch": len(results["per_epoch"]) + 1, "seconds": t1 - t0,
                                         "energy_j": joules(e0, e1), "steps_done": state.global_step,
                                         "accuracy": None, "eval_seconds": None, "eval_energy_j": None})

        def on_evaluate(self, targs, state, control, metrics=None, **kwargs):
            t1, e1 = mark()
            entry = results["per_epoch"][-1] if results["per_epoch"] else None
            if entry is None or entry["accuracy"] is not None or self.epoch_end is None:
                return  # an evaluation outside the epoch loop: not part of the recipe
            t0, e0 = self.epoch_end
            entry.update({"accuracy": (metrics or {}).get("eval_accuracy"), "eval_seconds": t1 - t0,
                          "eval_energy_j": joules(e0, e1)})
            summarise(results)
            write_report(report, args.out)
            write_log(args.log_file, log_rows)
            energy = "" if entry["energy_j"] is None else f", {entry['energy_j']:.0f} J"
            log(f"epoch {entry['epoch']}: {entry['seconds']:.1f} s{energy}, dev accuracy "
                f"{entry['accuracy']:.4f}, evaluation {entry['eval_seconds']:.2f} s")

        def on_log(self, targs, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                log_rows.append((state.global_step, logs.get("epoch"), logs.get("learning_rate"), logs["loss"],
                                 logs.get("grad_norm")))
                results["final_loss"] = logs["loss"]

        def on_train_end(self, targs, state, control, **kwargs):
            t1, e1 = mark()
            t0, e0 = self.train_begin
            results["window_seconds"] = t1 - t0
            results["window_energy_j"] = joules(e0, e1)
            results["steps"] = state.global_step

    return MeasureCallback()


def write_log(path, rows):
    """--log-file: the Trainer's training logs so far (rewritten after every epoch and at the end)."""
    if path:
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", "epoch", "learning_rate", "loss", "grad_norm"])
            writer.writerows(rows)


def summarise(results):
    """Totals of the epochs measured so far (training steps only, evaluation apart)."""
    epochs = results["per_epoch"]
    results["train_seconds"] = sum(e["seconds"] for e in epochs)
    energies = [e["energy_j"] for e in epochs]
    results["train_energy_j"] = None if not epochs or None in energies else sum(energies)
    results["eval_seconds"] = sum(e["eval_seconds"] or 0.0 for e in epochs)
    eval_energies = [e["eval_energy_j"] for e in epochs]
    results["eval_energy_j"] = None if not epochs or None in eval_energies else sum(eval_energies)
    accuracies = [e["accuracy"] for e in epochs if e["accuracy"] is not None]
    results["best_accuracy"] = max(accuracies) if accuracies else None
    results["best_epoch"] = 1 + [e["accuracy"] for e in epochs].index(results["best_accuracy"]) if accuracies \
        else None
    seconds = results["train_seconds"]
    results["examples_per_s"] = results["train_examples"] * len(epochs) / seconds if seconds > 0 else None
    results["avg_power_w"] = results["train_energy_j"] / seconds if results["train_energy_j"] and seconds else None
    idle = results.get("idle_power_w")
    results["dynamic_train_energy_j"] = (results["train_energy_j"] - idle * seconds
                                         if results["train_energy_j"] is not None and idle is not None else None)


def load_model(torch, transformers, model_dir, seed):
    """The checkpoint in float32 (an fp16 copy is up-cast) with a new 2-class head initialised from the seed."""
    from transformers import AutoModelForSequenceClassification

    transformers.set_seed(seed)
    major = int(transformers.__version__.split(".")[0])
    dtype_kwarg = "dtype" if major >= 5 else "torch_dtype"  # transformers 5 renamed torch_dtype
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2,
                                                               **{dtype_kwarg: torch.float32})
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise SystemExit(f"{model_dir}: parameters loaded as {sorted(map(str, dtypes))}, expected float32")
    return model


def training_arguments(transformers, args, output_dir, warmup_steps):
    """The Trainer arguments (bench/peer/README.md says why each is set); everything else is the default."""
    from transformers import TrainingArguments

    kwargs = {
        "output_dir": output_dir, "num_train_epochs": args.epochs, "per_device_train_batch_size": args.batch_size,
        "per_device_eval_batch_size": args.eval_batch_size, "learning_rate": args.learning_rate,
        "weight_decay": args.weight_decay, "warmup_steps": warmup_steps, "lr_scheduler_type": "linear",
        "max_grad_norm": args.max_grad_norm, "optim": args.optim, "adam_beta1": 0.9, "adam_beta2": 0.999,
        "adam_epsilon": 1e-8, "seed": args.seed, "bf16": args.precision == "bf16",
        "eval_strategy": "epoch", "save_strategy": "no", "logging_strategy": "steps",
        "logging_steps": args.logging_steps, "report_to": "none",
    }
    return TrainingArguments(**kwargs), {k: v for k, v in kwargs.items() if k != "output_dir"}


def run(args, train, dev, tokenizer, the_plan):
    import torch
    import transformers
    from transformers import DataCollatorWithPadding, Trainer, default_data_collator

    transformers.logging.set_verbosity_warning()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this peer measures GPU training (use --dry-run for the plan)")
    # IEEE fp32 for every fp32 matmul and convolution (bf16: the autocast region is bf16, the rest fp32 IEEE).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    try:
        nvml, nvml_error = Nvml(torch), None
    except Exception as exc:  # noqa: BLE001 - no NVML: time and accuracy still mean something
        nvml, nvml_error = None, f"{type(exc).__name__}: {exc}"
        log(f"no NVML energy counter ({nvml_error}): energy fields stay null")
    device_info = nvml.device_info() if nvml else {"gpu": torch.cuda.get_device_name(0), "gpu_uuid": None,
                                                   "driver": None, "power_limit_w": None, "nvml": None}
    try:
        import accelerate

        accelerate_version = accelerate.__version__
    except ImportError:
        accelerate_version = None
    from transformers import TrainingArguments

    default_optim = TrainingArguments.__dataclass_fields__["optim"].default
    report = {
        "tool": "hf_trainer", "torch": torch.__version__, "transformers": transformers.__version__,
        "accelerate": accelerate_version, "cuda": torch.version.cuda, "python": platform.python_version(),
        **device_info,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": os.path.abspath(args.model), "train_tsv": os.path.abspath(args.train_tsv),
        "dev_tsv": os.path.abspath(args.dev_tsv), "recipe": recipe(args), "padding": args.padding,
        "precision": args.precision, "plan": the_plan,
        "protocol": {"warmup_seconds": args.warmup_seconds, "idle_seconds": args.idle_seconds,
                     "energy_source": None if nvml is None else "nvmlDeviceGetTotalEnergyConsumption",
                     "energy_null_reason": nvml_error,
                     "train_window": "on_epoch_begin..on_epoch_end summed (steps only)",
                     "window": "on_train_begin..on_train_end (evaluations included, as nlpf's training energy)"},
        "trainer_default_optim": str(getattr(default_optim, "value", default_optim)),
        "complete": False,
        "results": {"train_examples": len(train), "dev_examples": len(dev), "train_seconds": 0.0,
                    "train_energy_j": None, "per_epoch": [], "eval_seconds": 0.0, "eval_energy_j": None,
                    "best_accuracy": None, "best_epoch": None, "steps": 0, "examples_per_s": None,
                    "avg_power_w": None, "idle_power_w": None, "dynamic_train_energy_j": None,
                    "window_seconds": None, "window_energy_j": None, "peak_memory_mb": None,
                    "final_loss": None, "train_loss_mean": None, "attn_implementation": None,
                    "interrupted": None},
    }
    results = report["results"]
    write_report(report, args.out)

    model = load_model(torch, transformers, args.model, args.seed)
    results["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
    collator = default_data_collator if args.padding == "max_length" else DataCollatorWithPadding(tokenizer)
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="peer_finetune_trainer_")
    targs, set_args = training_arguments(transformers, args, output_dir, the_plan["warmup_steps"])
    report["trainer_arguments"] = set_args
    log_rows = []

    def accuracy(eval_prediction):
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        return {"accuracy": float((logits.argmax(-1) == labels).mean())}

    callback = make_callback(torch, nvml, report, args, log_rows)
    # The Trainer seeds (set_seed(args.seed)) in its constructor: the shuffle follows the seed.
    trainer = Trainer(model=model, args=targs, train_dataset=train, eval_dataset=dev, data_collator=collator,
                      compute_metrics=accuracy, callbacks=[callback])

    def on_sigterm(signum, frame):  # `timeout` sends SIGTERM: keep what was measured, say where it stopped
        results["interrupted"] = f"signal {signum} after {trainer.state.global_step} steps"
        write_report(report, args.out)
        write_log(args.log_file, log_rows)
        log(f"interrupted by signal {signum} after {trainer.state.global_step} steps")
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    # TF32 off again once the Trainer and accelerate are set up (neither should touch it; on_train_begin
    # records what training ran with).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    if args.warmup_seconds > 0:
        log(f"GPU warm-up: {args.warmup_seconds:g} s of matmul load on {device_info.get('gpu')}")
        gpu_warmup(torch, args.warmup_seconds)
    if nvml and args.idle_seconds > 0:
        results["idle_power_w"] = idle_power_w(torch, nvml, args.idle_seconds)
        log(f"idle power {results['idle_power_w']:.1f} W over {args.idle_seconds:g} s")
    torch.cuda.reset_peak_memory_stats()
    log(f"training: {the_plan['train_examples']} examples, {the_plan['total_steps']} steps "
        f"({the_plan['warmup_steps']} warm-up), {args.padding}, {args.precision}")
    output = trainer.train()
    results["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    results["train_loss_mean"] = output.training_loss
    summarise(results)
    write_log(args.log_file, log_rows)
    problems = []
    if results["trainer_max_steps"] != the_plan["total_steps"]:
        problems.append(f"the Trainer ran {results['trainer_max_steps']} steps, planned {the_plan['total_steps']}")
    if results["trainer_warmup_steps"] != the_plan["warmup_steps"]:
        problems.append(f"the Trainer's warm-up is {results['trainer_warmup_steps']} steps, planned "
                        f"{the_plan['warmup_steps']}")
    if args.precision == "fp32" and results["tf32_matmul"]:
        problems.append("TF32 was on for fp32 matmuls")
    if any(e["seconds"] < MIN_WINDOW_S for e in results["per_epoch"]):
        problems.append(f"an epoch lasted less than {MIN_WINDOW_S:g} s: its energy is coarse (counter ~100 ms)")
    results["problems"] = problems
    report["complete"] = True
    text = write_report(report, args.out)
    if not args.output_dir:
        shutil.rmtree(output_dir, ignore_errors=True)
    for p in problems:
        log(f"note: {p}")
    return text


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="Hugging Face checkpoint directory (e.g. carry/minilm-f16)")
    parser.add_argument("--train-tsv", required=True, help="SST-2 train.tsv (sentence<TAB>label)")
    parser.add_argument("--dev-tsv", required=True, help="SST-2 dev.tsv (sentence<TAB>label)")
    parser.add_argument("--padding", type=padding_name, default="max_length",
                        help="max_length (every example padded to --max-length, the study) or longest "
                             "(DataCollatorWithPadding)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32 (TF32 off) or bf16 (Trainer bf16=True autocast, fp32 master weights)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-batch-size", type=int, default=64, help="nlpf phase1's default")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.06)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--optim", default="adamw_torch",
                        help="TrainingArguments.optim (default adamw_torch: torch.optim.AdamW, for-each kernels)")
    parser.add_argument("--logging-steps", type=int, default=50,
                        help="Trainer logging interval (1 logs every step but syncs the GPU every step)")
    parser.add_argument("--max-train-examples", type=int, help="the first N training examples (smoke runs)")
    parser.add_argument("--warmup-seconds", type=float, default=25.0,
                        help="matmul load before the idle baseline (an H200 draws ~28%% more for its first ~22 s)")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle baseline before training")
    parser.add_argument("--gpu", default="0", help="CUDA_VISIBLE_DEVICES when it is unset (the Trainer would "
                                                   "use DataParallel over several visible GPUs)")
    parser.add_argument("--output-dir", help="Trainer output_dir (default: a temporary directory, removed)")
    parser.add_argument("--out", help="the JSON (also printed at the end); rewritten as the run goes")
    parser.add_argument("--log-file", help="CSV: step,epoch,learning_rate,loss,grad_norm")
    parser.add_argument("--dry-run", action="store_true",
                        help="read, tokenize (when transformers is importable) and print the plan; no torch")
    args = parser.parse_args()
    for name in ("max_length", "batch_size", "eval_batch_size", "epochs", "logging_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.max_train_examples is not None and args.max_train_examples < 1:
        parser.error("--max-train-examples must be positive")
    if not 0.0 <= args.warmup_ratio < 1.0:
        parser.error("--warmup-ratio must be in [0, 1)")
    return args


def main():
    args = parse_args()
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", args.gpu)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    train_sentences, train_labels = read_dev_tsv(args.train_tsv)
    if args.max_train_examples is not None:
        train_sentences = train_sentences[:args.max_train_examples]
        train_labels = train_labels[:args.max_train_examples]
    dev_sentences, dev_labels = read_dev_tsv(args.dev_tsv)
    the_plan = plan(len(train_sentences), args)

    try:
        tokenizer = load_tokenizer(args.model)
    except ImportError as exc:
        if not args.dry_run:
            raise
        tokenizer = None
        tokenizer_note = f"not tokenized: {exc}"
    started = time.perf_counter()
    if tokenizer is not None:
        train = encode(tokenizer, train_sentences, train_labels, args.padding, args.max_length)
        dev = encode(tokenizer, dev_sentences, dev_labels, args.padding, args.max_length)
        tokenizer_note = f"{type(tokenizer).__name__}, {time.perf_counter() - started:.1f} s"
    log(f"plan: {the_plan['train_examples']} training examples, {the_plan['steps_per_epoch']} steps per epoch, "
        f"{the_plan['total_steps']} steps, {the_plan['warmup_steps']} warm-up steps; {args.padding}, "
        f"{args.precision}; tokenizer: {tokenizer_note}")

    if args.dry_run:
        summary = {"dry_run": True, "recipe": recipe(args), "padding": args.padding, "precision": args.precision,
                   "plan": the_plan, "dev_examples": len(dev_sentences), "tokenizer": tokenizer_note,
                   "train_labels_positive": sum(train_labels)}
        if tokenizer is not None:
            summary.update({"train_lengths": length_summary(train, args.max_length),
                            "dev_lengths": length_summary(dev, args.max_length),
                            "first_train_ids": train[0]["input_ids"][:16]})
        print(dumps_by_line(summary))
        return
    print(run(args, train, dev, tokenizer, the_plan))


if __name__ == "__main__":
    main()
