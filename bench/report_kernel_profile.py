#!/usr/bin/env python3
"""Summarise an ncu CSV of a training step's kernels (tools/device_check.sh profile_train writes them).

Input: `ncu --csv --metrics gpu__time_duration.sum` output (plain or .gz) over a few optimiser steps of
bench/gpu_training_bench with --capture-steps off (the kernels a captured step replays, one by one). One step is
the kernels between two consecutive `decide_step` launches (the optimiser's decision, once a step). Prints the
step's kernel count and time, and the time by kind of kernel (GEMM, bias gradients, LayerNorm, ...), largest
first: the table bench/RESULTS.md quotes.
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
    args = parser.parse_args()
    for path in args.csv:
        rows = load(path)
        marks = [i for i, (name, _) in enumerate(rows) if "decide_step" in name]
        if len(marks) < 2:
            print(f"{path}: fewer than two decide_step launches: no whole step in the profile")
            continue
        step = rows[marks[0] + 1 : marks[1] + 1]
        total = sum(ms for _, ms in step)
        time, count = collections.Counter(), collections.Counter()
        for name, ms in step:
            time[kind_of(name)] += ms
            count[kind_of(name)] += 1
        print(f"## {path}: one step, {len(step)} kernels, {total:.3f} ms of kernel time")
        print("| kind | ms | share | kernels |")
        print("|---|---|---|---|")
        for kind, ms in time.most_common():
            print(f"| {kind} | {ms:.3f} | {100 * ms / total:.1f}% | {count[kind]} |")


if __name__ == "__main__":
    main()
