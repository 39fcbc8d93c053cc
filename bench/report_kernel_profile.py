#!/usr/bin/env python3
"""Summarise an ncu CSV of a training step's or an inference batch's kernels (tools/device_check.sh).

Input: `ncu --csv --metrics gpu__time_duration.sum` output (plain or .gz). With --unit step (the default): a few
optimiser steps of bench/gpu_training_bench with --capture-steps off (profile_train; the kernels a captured step
replays, one by one), one step being the kernels between two consecutive `decide_step` launches (the optimiser's
decision, once a step). With --unit forward: bench/gpu_inference_bench's kernels (tf32_profile), one batch's
forward being the kernels after a `classifier_head_forward` launch up to and including the next one (the head
ends every forward). Prints the unit's kernel count and time, and the time by kind of kernel (GEMM, bias
gradients, LayerNorm, ...), largest first: the table bench/RESULTS.md quotes.
"""
import argparse
import collections
import csv
import gzip
import sys

# Kinds by substring of the kernel's name, first match wins; cuBLASLt's GEMM kernels go by several names.
# PyTorch's fused attention kernels (fmha_cutlass*, flash_*) are attention, not GEMMs (the peer's profile).
KINDS = [
    ("split-K reduction (cuBLASLt)", ("splitkreduce",)),
    ("attention", ("attention", "fmha", "flash")),
    ("classifier head", ("classifier_head",)),
    ("token select", ("token_select",)),
    ("GEMM (cuBLASLt)", ("nvjet", "gemm", "cutlass", "sm90_xmma", "xmma")),
    ("softmax", ("softmax",)),
    ("LayerNorm", ("layer_norm",)),
    ("dropout", ("dropout",)),
    ("AdamW", ("adamw",)),
    ("GELU", ("gelu",)),
    ("bias gradient", ("bias",)),
    ("residual add", ("add",)),
    ("embeddings", ("embedding", "radix", "scatter")),
    ("gradient norm and clipping", ("sum_sq", "scale", "clip")),
    ("loss", ("cross_entropy",)),
]


# The kernel launched once per unit, last in it.
MARKERS = {"step": "decide_step", "forward": "classifier_head_forward"}


def kind_of(name):
    lower = name.lower()
    for kind, keys in KINDS:
        if any(k in lower for k in keys):
            return kind
    return "other"


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        lines = [line for line in f if line.startswith('"')]  # ncu's own messages are not CSV rows
    rows = []
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(r["Metric Value"].replace(",", ""))
        scale = {"ns": 1e-6, "us": 1e-3, "usecond": 1e-3, "ms": 1.0, "msecond": 1.0}.get(r["Metric Unit"], None)
        if scale is None:
            sys.exit(f"{path}: unknown unit {r['Metric Unit']!r}")
        rows.append((r["Kernel Name"], value * scale))  # ms
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+", help="ncu CSV files (.csv or .csv.gz)")
    parser.add_argument("--unit", choices=sorted(MARKERS), default="step",
                        help="a training step (decide_step) or an inference forward (classifier_head_forward)")
    args = parser.parse_args()
    marker = MARKERS[args.unit]
    for path in args.csv:
        rows = load(path)
        marks = [i for i, (name, _) in enumerate(rows) if marker in name]
        if len(marks) < 2:
            print(f"{path}: fewer than two {marker} launches: no whole {args.unit} in the profile")
            continue
        step = rows[marks[0] + 1 : marks[1] + 1]
        total = sum(ms for _, ms in step)
        time, count = collections.Counter(), collections.Counter()
        for name, ms in step:
            time[kind_of(name)] += ms
            count[kind_of(name)] += 1
        print(f"## {path}: one {args.unit}, {len(step)} kernels, {total:.3f} ms of kernel time")
        print("| kind | ms | share | kernels |")
        print("|---|---|---|---|")
        for kind, ms in time.most_common():
            print(f"| {kind} | {ms:.3f} | {100 * ms / total:.1f}% | {count[kind]} |")


if __name__ == "__main__":
    main()
