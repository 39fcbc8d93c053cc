#!/usr/bin/env python3
"""What the GEMM autotune chose, from bench/gpu_inference_bench JSONs (their "gemm_autotune" list).

Per file: how many plans were timed, how many chose a candidate other than the heuristic's first (index 0), and
for those the chosen candidate's time against the first's (below 1: the autotune found a faster one), and how many
were replayed (--autotune-replay: not timed in that run). Then, for plans of the same GEMM in several files (the
same plan name where the JSON records one, else the same math, M, N, K, batch and beta), how many files chose
differently: a choice that moves between runs of the same build is one that timing noise decides.
Usage: report_autotune.py FILE.json [FILE.json ...]
"""
import collections
import json
import sys


def plans_of(path):
    with open(path) as f:
        return json.load(f).get("gemm_autotune", [])


def label_of(plan):
    beta = " beta=1" if plan["reads_c"] else ""
    return f"{plan['math']} M={plan['M']} N={plan['N']} K={plan['K']} batch={plan['batch']}{beta}"


def key_of(plan):
    return plan.get("plan") or label_of(plan)


def main(paths):
    if not paths:
        sys.exit(__doc__)
    choices = collections.defaultdict(list)  # GEMM -> [(file, chosen)]
    labels = {}
    print("| file | plans | not the heuristic's first | chosen / first time (median, min) | replayed |")
    print("|---|---|---|---|---|")
    for path in paths:
        plans = plans_of(path)
        moved = [p for p in plans if p["chosen"] != 0 and p["candidate_ms"][0] > 0]
        ratios = sorted(p["candidate_ms"][p["chosen"]] / p["candidate_ms"][0] for p in moved)
        summary = f"{ratios[len(ratios) // 2]:.3f}, {ratios[0]:.3f}" if ratios else "-"
        replayed = sum(1 for p in plans if p.get("replayed"))
        print(f"| {path} | {len(plans)} | {len(moved)} | {summary} | {replayed} |")
        for p in plans:
            choices[key_of(p)].append((path, p["chosen"]))
            labels[key_of(p)] = label_of(p)
    shared = {k: v for k, v in choices.items() if len(v) > 1}
    differing = {k: v for k, v in shared.items() if len({c for _, c in v}) > 1}
    print(f"\nGEMMs timed in more than one file: {len(shared)}; chosen differently: {len(differing)}")
    for key, v in sorted(differing.items(), key=lambda item: labels[item[0]]):
        picks = " ".join(str(c) for _, c in v)
        print(f"  {labels[key]}: chosen {picks}")


if __name__ == "__main__":
    main(sys.argv[1:])
