#!/usr/bin/env python3
"""Prints the CPU engine comparison: nlpf (Google Benchmark JSON of bench/cpu_engine_bench) against PyTorch
(JSON of bench/peer_cpu_engine.py), one line per measurement with the ratio ours/PyTorch time (goal <= 1.25).

Ours: the median aggregate when run with --benchmark_repetitions, else the mean real time per iteration.
Usage: report_cpu_engine.py OURS.json PEER.json [--goal 1.25]
"""
import argparse
import json
import sys

UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def base_name(name):
    """bert_base/train_step from Google Benchmark's bert_base/train_step/real_time (or .../repeats:5)."""
    return "/".join(part for part in name.split("/") if part != "real_time" and ":" not in part)


def our_times(report):
    """name -> (seconds per iteration, threads counter, how it was summarised)."""
    times = {}
    for bm in report["benchmarks"]:
        name = base_name(bm.get("run_name", bm["name"]))
        seconds = bm["real_time"] * UNIT_SECONDS[bm.get("time_unit", "ns")]
        if bm.get("run_type") == "aggregate":
            if bm.get("aggregate_name") == "median":
                times[name] = (seconds, bm.get("omp_threads"), "median")
        elif name not in times or times[name][2] != "median":
            times[name] = (seconds, bm.get("omp_threads"), "mean")
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ours")
    parser.add_argument("peer")
    parser.add_argument("--goal", type=float, default=1.25)
    args = parser.parse_args()
    with open(args.ours, encoding="utf-8") as f:
        ours = our_times(json.load(f))
    with open(args.peer, encoding="utf-8") as f:
        peer = json.load(f)

    peer_threads = peer["threads"]
    print(f"CPU engine vs PyTorch {peer['versions']['torch']} ({peer['cpu']}, AdamW {peer['adamw']}, "
          f"attention {peer['attn_implementation']})")
    met = True
    compared = 0
    for name, p in peer["results"].items():
        if name not in ours:
            print(f"{name}: no nlpf measurement")
            continue
        seconds, threads, how = ours[name]
        if threads is not None and int(threads) != peer_threads:
            print(f"WARNING {name}: nlpf ran {int(threads)} threads, PyTorch {peer_threads}")
        ratio = seconds / p["median_s"]
        met = met and ratio <= args.goal
        compared += 1
        print(f"{name} (B={p['batch']}, T={p['tokens']}, {peer_threads} threads): "
              f"nlpf {seconds * 1e3:.1f} ms "
              f"({how}), PyTorch {p['median_s'] * 1e3:.1f} ms (median of {len(p['times_s'])}), "
              f"ratio {ratio:.2f}x {'<=' if ratio <= args.goal else '>'} {args.goal}")
    for name in sorted(set(ours) - set(peer["results"])):
        print(f"{name}: no PyTorch measurement")
    if compared == 0:
        print("nothing to compare")
        return 1
    verdict = "met" if met else "NOT met"
    print(f"goal (nlpf time <= {args.goal}x PyTorch's) {verdict} in {compared} measurements")
    return 0


if __name__ == "__main__":
    sys.exit(main())
