#!/usr/bin/env python3
"""A/B report of bench/gpu_inference_bench runs alternated A B A B (tools/device_check.sh engine_ab): for every
(model, precision, batch size, padding) the mean J/example and ms/example of A's rounds and of B's, the ratios
B/A, each round's J ratio (B's round r over A's round r, so a drift across the call shows) and the mean power of
each side. Counts the runs where B was faster and where it used less energy.
Usage: report_ab.py DIR A B   (DIR holds A_1.json, B_1.json, A_2.json, B_2.json, ...)
"""

import json
import sys
from pathlib import Path


def load(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    out = {}
    for r in doc.get("records", []):
        if r.get("error"):
            continue
        out[(r["model"], r["precision"], int(r["batch_size"]), r["padding"])] = r
    return out


def rounds(directory, value):
    found = []
    r = 1
    while (directory / f"{value}_{r}.json").exists():
        found.append(load(directory / f"{value}_{r}.json"))
        r += 1
    return found


def mean(values):
    return sum(values) / len(values)


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    directory, a, b = Path(argv[1]), argv[2], argv[3]
    runs_a, runs_b = rounds(directory, a), rounds(directory, b)
    if not runs_a or len(runs_a) != len(runs_b):
        print(f"report_ab: {directory} has {len(runs_a)} rounds of {a} and {len(runs_b)} of {b}", file=sys.stderr)
        return 1
    keys = sorted(set.intersection(*(set(run) for run in runs_a + runs_b)))
    if not keys:
        print(f"report_ab: no point measured in every round in {directory}", file=sys.stderr)
        return 1
    print(f"| model | prec | batch | padding | {a} J/ex | {b} J/ex | J ratio | {a} ms/ex | {b} ms/ex | ms ratio "
          f"| per-round J ratios | W {a} / {b} |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    faster = less_energy = total = 0
    for k in keys:
        ja = [run[k]["j_per_example"] for run in runs_a]
        jb = [run[k]["j_per_example"] for run in runs_b]
        ma = [run[k]["ms_per_example"] for run in runs_a]
        mb = [run[k]["ms_per_example"] for run in runs_b]
        wa = mean([run[k]["avg_power_w"] for run in runs_a])
        wb = mean([run[k]["avg_power_w"] for run in runs_b])
        per_round = " ".join(f"{y / x:.3f}" for x, y in zip(ja, jb))
        faster += sum(y < x for x, y in zip(ma, mb))
        less_energy += sum(y < x for x, y in zip(ja, jb))
        total += len(ja)
        print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {mean(ja):.5f} | {mean(jb):.5f} | {mean(jb) / mean(ja):.3f} "
              f"| {mean(ma):.5f} | {mean(mb):.5f} | {mean(mb) / mean(ma):.3f} | {per_round} | {wa:.0f} / {wb:.0f} |")
    print(f"\n{b} against {a}: faster in {faster} of {total} runs, less energy in {less_energy} of {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
