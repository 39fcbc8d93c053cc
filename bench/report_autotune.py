#!/usr/bin/env python3
"""What the GEMM autotune chose, from bench/gpu_inference_bench JSONs (their "gemm_autotune" list).

Per file: how many plans were timed, how many chose a candidate other than the heuristic's first (index 0), and
for those the chosen candidate's time against the first's (below 1: the autotune found a faster one). Then, for
plans of the same GEMM (math, M, N, K, batch, beta) in several files, how many files chose differently: a choice
that moves between runs of the same build is one that timing noise decides.
Usage: report_autotune.py FILE.json [FILE.json ...]
"""
import collections
import json
import sys


def plans_of(path):
    with open(path) as f:
        return json.load(f).get("gemm_autotune", [])


def key_of(plan):
    return (plan["math"], plan["M"], plan["N"], plan["K"], plan["batch"], plan["reads_c"])


def main(paths):
    if not paths:
        sys.exit(__doc__)
    choices = collections.defaultdict(list)  # GEMM -> [(file, chosen)]
    print("| file | plans | not the heuristic's first | chosen / first time (median, min) |")
    print("|---|---|---|---|")
    for path in paths:
        plans = plans_of(path)
        moved = [p for p in plans if p["chosen"] != 0 and p["candidate_ms"][0] > 0]
        ratios = sorted(p["candidate_ms"][p["chosen"]] / p["candidate_ms"][0] for p in moved)
        summary = f"{ratios[len(ratios) // 2]:.3f}, {ratios[0]:.3f}" if ratios else "-"
        print(f"| {path} | {len(plans)} | {len(moved)} | {summary} |")
        for p in plans:
            choices[key_of(p)].append((path, p["chosen"]))
    shared = {k: v for k, v in choices.items() if len(v) > 1}
    differing = {k: v for k, v in shared.items() if len({c for _, c in v}) > 1}
    print(f"\nGEMMs timed in more than one file: {len(shared)}; chosen differently: {len(differing)}")
    for (math, M, N, K, batch, reads_c), v in sorted(differing.items()):
        picks = " ".join(str(c) for _, c in v)
        print(f"  {math} M={M} N={N} K={K} batch={batch}{' beta=1' if reads_c else ''}: chosen {picks}")


if __name__ == "__main__":
    main(sys.argv[1:])
