#!/usr/bin/env python3
"""Peer side of the CPU engine benchmark: PyTorch + Hugging Face transformers on the CPU, the same four
measurements as bench/cpu_engine_bench.cc, on the same cores with the same thread count.

  bert_base/eval_forward, minilm/eval_forward: model.eval() under torch.inference_mode(), logits only;
  bert_base/train_step, minilm/train_step: model.train() (dropout 0.1), zero_grad, forward with labels,
      backward, clip_grad_norm_(1.0), AdamW step (the HF Trainer's two parameter groups and its default
      implementation: fused where torch has it, --adamw to change).
B = 32, T = 128, random ids in [1000, V), token type 0, full attention mask; fp32 with "highest" matmul
precision; eager attention (--attn-implementation to change). bert_base is the config at --config-dir with
HF's random init; minilm is the checkpoint at --minilm-dir (float32). Each measurement: --warmup untimed
calls, then --repeats timed ones; the median is reported. Prints (and writes with --out) one JSON object.
Usage: peer_cpu_engine.py --config-dir DIR [--minilm-dir DIR] [--threads N] [--repeats 5] [--out FILE]
"""

import argparse
import json
import os
import platform
import statistics
import time

import torch
import transformers
from transformers import AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def random_batch(batch, tokens, vocab_size, seed):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab_size, (batch, tokens), generator=generator)
    return {
        "input_ids": ids,
        "token_type_ids": torch.zeros_like(ids),
        "attention_mask": torch.ones_like(ids),
    }, torch.randint(0, 2, (batch,), generator=generator)


def decay_parameter_names(model):
    get_names = getattr(transformers.Trainer, "get_decay_parameter_names", None)
    if get_names is not None:
        return set(get_names(None, model))  # uses no state of the Trainer
    return {n for n, _ in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n}


def make_optimizer(model, kind):
    decay = decay_parameter_names(model)
    params = dict(model.named_parameters())
    groups = [
        {"params": [p for n, p in params.items() if n in decay], "weight_decay": 0.01},
        {"params": [p for n, p in params.items() if n not in decay], "weight_decay": 0.0},
    ]
    options = {"fused": {"fused": True}, "foreach": {"foreach": True}, "single": {"foreach": False}}[kind]
    return torch.optim.AdamW(groups, lr=3e-5, betas=(0.9, 0.999), eps=1e-8, **options)


def timed(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def measure(name, model, args):
    inputs, labels = random_batch(args.batch, args.tokens, model.config.vocab_size, seed=7)
    results = {}

    model.eval()

    def eval_forward():
        with torch.inference_mode():
            return model(**inputs).logits

    times = timed(eval_forward, args.warmup, args.repeats)
    results[f"{name}/eval_forward"] = summary(times, args)

    model.train()
    optimizer = make_optimizer(model, args.adamw)
    last = {}

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        last["loss"] = loss.item()

    times = timed(train_step, args.warmup, args.repeats)
    results[f"{name}/train_step"] = {**summary(times, args), "loss": last["loss"]}
    results[f"{name}/train_step"]["parameters"] = sum(p.numel() for p in model.parameters())
    results[f"{name}/eval_forward"]["parameters"] = results[f"{name}/train_step"]["parameters"]
    return results


def summary(times, args):
    median = statistics.median(times)
    return {"median_s": median, "times_s": times, "batch": args.batch, "tokens": args.tokens,
            "examples_per_s": args.batch / median}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-dir", required=True, help="bert-base-uncased config.json directory")
    parser.add_argument("--minilm-dir", help="all-MiniLM-L6-v2 checkpoint directory (optional)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
                        help="torch.set_num_threads (default: OMP_NUM_THREADS, else torch's default)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--adamw", choices=("fused", "foreach", "single"), default="fused")
    parser.add_argument("--attn-implementation", default="eager")
    parser.add_argument("--only", choices=("bert_base", "minilm"), help="run one model only")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("highest")

    results = {}
    if args.only in (None, "bert_base"):
        torch.manual_seed(42)
        config = BertConfig.from_pretrained(args.config_dir, num_labels=2)
        model = BertForSequenceClassification._from_config(config,
                                                           attn_implementation=args.attn_implementation)
        results.update(measure("bert_base", model.float(), args))
        del model
    if args.minilm_dir and args.only in (None, "minilm"):
        torch.manual_seed(42)
        model = AutoModelForSequenceClassification.from_pretrained(
            args.minilm_dir, num_labels=2, dtype=torch.float32, attn_implementation=args.attn_implementation)
        results.update(measure("minilm", model, args))
        del model

    report = {
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu": cpu_name(),
        "adamw": args.adamw,
        "attn_implementation": args.attn_implementation,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
        "torch_parallel_info": torch.__config__.parallel_info().splitlines()[:6],
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
