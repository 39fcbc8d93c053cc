#!/usr/bin/env python3
"""Side-by-side report of the GPU inference benchmark: nlpf (bench/gpu_inference_bench) against PyTorch +
transformers eager and torch.compile (bench/peer/peer_gpu_inference.py), matched by model, precision, batch
size and padding. Prints a markdown table of J/example, ms/example, mean power and peak memory with ratios
nlpf/peer (the mean power says where a side left the GPU partly idle: eager waiting on its host at small
batches draws far less than the power limit, and its figures there depend on the host's speed), and the goals
of issue 11 item 7 as PASS/MISS lines:
  fp32: J/example and ms/example <= 0.85x eager;
  tf32, fp16, bf16: <= 0.5x eager at batch 32 and 64, <= 0.8x torch.compile (its best mode) at every batch;
  bert_base fp16, batch 256, padded to 128: >= 22,000 examples/s;
  peak memory <= PyTorch eager's.
Usage: report_gpu_inference.py OURS.json PEER.json [PEER2.json ...] [--markdown-out FILE]
"""

import argparse
import json
import sys


def key(r):
    return (r["model"], r["precision"], int(r["batch_size"]), r["padding"].replace("-", "_"))


def load_peer(paths):
    eager, compiled, meta = {}, {}, None
    for path in paths:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        meta = meta or doc
        for r in doc.get("records", []):
            if r.get("error"):
                continue
            k = key(r)
            if r["engine"] == "pytorch_eager":
                eager[k] = r
            elif r["engine"] == "pytorch_compile":
                best = compiled.get(k)
                if best is None or (r.get("j_per_example") or 1e9) < (best.get("j_per_example") or 1e9):
                    compiled[k] = r
    return eager, compiled, meta


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(x, digits=4):
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ours")
    parser.add_argument("peers", nargs="+")
    parser.add_argument("--markdown-out")
    args = parser.parse_args()
    with open(args.ours, encoding="utf-8") as f:
        ours = json.load(f)
    eager, compiled, peer_meta = load_peer(args.peers)

    lines = []
    lines.append(f"nlpf {ours.get('nlpf_commit')} vs torch {peer_meta.get('torch')} / transformers "
                 f"{peer_meta.get('transformers')} on {ours.get('gpu')} ({ours.get('date')})")
    lines.append("")
    lines.append("| model | prec | batch | padding | nlpf J/ex | eager J/ex | compile J/ex | J ratio eager | J ratio compile "
                 "| nlpf ms/ex | eager ms/ex | ms ratio eager | ms ratio compile | nlpf ex/s | nlpf W | eager W | compile W "
                 "| nlpf MB | eager MB | acc nlpf / eager |")
    lines.append("|" + "---|" * 20)
    goals = []
    for r in ours.get("records", []):
        k = key(r)
        if r.get("error"):
            lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | error: {r['error']} |" + " |" * 15)
            continue
        e, c = eager.get(k), compiled.get(k)
        je, jc = (e or {}).get("j_per_example"), (c or {}).get("j_per_example")
        me, mc = (e or {}).get("ms_per_example"), (c or {}).get("ms_per_example")
        rje, rjc = ratio(r.get("j_per_example"), je), ratio(r.get("j_per_example"), jc)
        rme, rmc = ratio(r.get("ms_per_example"), me), ratio(r.get("ms_per_example"), mc)
        lines.append(
            f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {fmt(r.get('j_per_example'))} | {fmt(je)} | {fmt(jc)} | "
            f"{fmt(rje, 3)} | {fmt(rjc, 3)} | {fmt(r.get('ms_per_example'))} | {fmt(me)} | {fmt(rme, 3)} | "
            f"{fmt(rmc, 3)} | {fmt(r.get('examples_per_s'), 6)} | {fmt(r.get('avg_power_w'), 3)} | "
            f"{fmt((e or {}).get('avg_power_w'), 3)} | {fmt((c or {}).get('avg_power_w'), 3)} | "
            f"{fmt(r.get('peak_memory_mb'), 5)} | "
            f"{fmt((e or {}).get('peak_memory_mb'), 5)} | {fmt(r.get('accuracy'))} / {fmt((e or {}).get('accuracy'))} |")
        label = f"{k[0]} {k[1]} b{k[2]} {k[3]}"
        if e is not None:
            limit = 0.85 if k[1] == "fp32" else (0.5 if k[2] in (32, 64) else None)
            if limit is not None:
                for name, value in (("J/ex", rje), ("ms/ex", rme)):
                    if value is not None:
                        goals.append((value <= limit, f"{label}: {name} {value:.3f}x eager (goal <= {limit})"))
            mem = ratio(r.get("peak_memory_mb"), e.get("peak_memory_mb"))
            if mem is not None:
                goals.append((mem <= 1.0, f"{label}: peak memory {mem:.3f}x eager (goal <= 1)"))
        if c is not None and k[1] != "fp32":
            for name, value in (("J/ex", rjc), ("ms/ex", rmc)):
                if value is not None:
                    goals.append((value <= 0.8, f"{label}: {name} {value:.3f}x torch.compile "
                                                f"({c.get('compile_mode')}) (goal <= 0.8)"))
        if k == ("bert_base", "fp16", 256, "max_length"):
            eps = r.get("examples_per_s") or 0
            goals.append((eps >= 22000, f"{label}: {eps:.0f} examples/s (goal >= 22000)"))
    lines.append("")
    passed = sum(1 for ok, _ in goals if ok)
    lines.append(f"goals: {passed} of {len(goals)} met")
    for ok, text in goals:
        lines.append(("PASS " if ok else "MISS ") + text)
    report = "\n".join(lines)
    print(report)
    if args.markdown_out:
        with open(args.markdown_out, "w", encoding="utf-8") as f:
            f.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
