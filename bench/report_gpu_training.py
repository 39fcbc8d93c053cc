#!/usr/bin/env python3
"""Side-by-side report of the training-step benchmark: nlpf (bench/gpu_training_bench) against PyTorch eager
(and torch.compile where it ran) from bench/peer/peer_training_step.py, same shape (batch x sequence length).
Ratios are nlpf / peer, so below 1 is nlpf ahead. Rows:
  fp32 vs fp32 (IEEE on both sides), tf32 vs tf32, bf16 vs bf16 autocast (nlpf: bf16 GEMM inputs, f32
  storage), and nlpf's fastest precision vs PyTorch's bf16 autocast, labelled as such;
and the goals of issue 12 item 6 as PASS/MISS lines: ms/step <= 0.9x PyTorch eager fp32, and <= 0.6x PyTorch
eager bf16 autocast (bf16 against bf16; against nlpf's best precision where nlpf has no bf16 record).
Usage: report_gpu_training.py OURS.json PEER.json [--markdown-out FILE]
"""

import argparse
import json
import sys

from report_gpu_inference import fmt, ratio  # the same cell formats as the inference report

MIN_WINDOW_S = 5.0  # DESIGN section 6: energy windows of at least 5 s
GOALS = {("fp32", "pytorch_eager"): 0.9, ("bf16", "pytorch_eager"): 0.6}  # peer precision, engine -> max ratio


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def ok_records(doc):
    return [r for r in doc.get("records", []) if not r.get("error") and r.get("ms_per_step")]


def comparisons(ours, peer):
    """(label, nlpf record, peer record, goal or None) for every pair the report shows."""
    by_precision = {r["precision"]: r for r in ours}
    best = min(ours, key=lambda r: r["ms_per_step"]) if ours else None
    rows = []
    for engine in ("pytorch_eager", "pytorch_compile"):
        peers = {r["precision"]: r for r in peer if r["engine"] == engine}
        name = "eager" if engine == "pytorch_eager" else "torch.compile"
        for precision in ("fp32", "tf32", "bf16"):
            if precision in by_precision and precision in peers:
                rows.append((f"{precision} vs {precision} ({name})", by_precision[precision], peers[precision],
                             GOALS.get((precision, engine))))
        if best is not None and "bf16" in peers and best["precision"] != "bf16":
            goal = None if "bf16" in by_precision else GOALS.get(("bf16", engine))
            rows.append((f"nlpf best ({best['precision']}) vs bf16 autocast ({name})", best, peers["bf16"], goal))
    return rows


def table(rows, ours_doc, peer_doc):
    lines = [f"nlpf {ours_doc.get('nlpf_commit', '?')} vs torch {peer_doc.get('torch', '?')} / transformers "
             f"{peer_doc.get('transformers', '?')} on {ours_doc.get('gpu', '?')}; shape "
             f"{json.dumps(ours_doc.get('shape', {}))}",
             "",
             "| comparison | nlpf ms/step | peer ms/step | ms ratio | goal | nlpf J/example | peer J/example | "
             "J ratio | nlpf ex/s | peer ex/s | nlpf peak MiB | peer peak MiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for label, a, b, goal in rows:
        ms_ratio = ratio(a["ms_per_step"], b["ms_per_step"])
        j_ratio = ratio(a.get("j_per_example"), b.get("j_per_example"))
        goal_text = "—" if goal is None else f"<= {goal:g}"
        lines.append(f"| {label} | {fmt(a['ms_per_step'])} | {fmt(b['ms_per_step'])} | {fmt(ms_ratio, 3)} | "
                     f"{goal_text} | {fmt(a.get('j_per_example'))} | {fmt(b.get('j_per_example'))} | "
                     f"{fmt(j_ratio, 3)} | {fmt(a.get('examples_per_s'))} | {fmt(b.get('examples_per_s'))} | "
                     f"{fmt(a.get('peak_memory_mb'))} | {fmt(b.get('peak_memory_mb'))} |")
        if goal is not None and ms_ratio is not None:
            verdicts.append(f"{'PASS' if ms_ratio <= goal else 'MISS'} {label}: ms/step ratio {ms_ratio:.3f} "
                            f"(goal <= {goal:g})")
    notes = []
    shape_keys = ("batch_size", "seq_len", "hidden_size", "num_hidden_layers")
    ours_shape = {k: ours_doc.get("shape", {}).get(k) for k in shape_keys}
    peer_shape = {k: peer_doc.get("shape", {}).get(k) for k in shape_keys}
    if ours_doc.get("device", "cuda") != "cuda":
        notes.append(f"nlpf ran with --device {ours_doc.get('device')}: a smoke run of the harness, not a measurement")
    if ours_shape != peer_shape:
        notes.append(f"SHAPE MISMATCH: nlpf {ours_shape} vs peer {peer_shape}: the ratios compare different work")
    for side, recs in (("nlpf", ours_doc.get("records", [])), ("peer", peer_doc.get("records", []))):
        for r in recs:
            if r.get("error"):
                notes.append(f"{side} {r.get('precision')} {r.get('engine')}: {r['error'][:160]}")
            elif any(t.get("seconds", 0) < MIN_WINDOW_S for t in r.get("trial_data", [])):
                notes.append(f"{side} {r.get('precision')} {r.get('engine')}: a trial lasted under {MIN_WINDOW_S:g} s "
                             f"(the energy counter updates every ~100 ms): raise --steps for J/example")
            if not r.get("error") and r.get("throttled"):
                notes.append(f"{side} {r.get('precision')} {r.get('engine')}: throttled "
                             f"(clocks-event reasons {r.get('clocks_event_reasons')})")
    return lines, verdicts, notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ours", help="gpu_training_bench --out JSON")
    parser.add_argument("peer", help="peer_training_step.py --out JSON")
    parser.add_argument("--markdown-out", help="also write the table and verdicts here")
    args = parser.parse_args(argv)
    ours_doc, peer_doc = load(args.ours), load(args.peer)
    rows = comparisons(ok_records(ours_doc), ok_records(peer_doc))
    lines, verdicts, notes = table(rows, ours_doc, peer_doc)
    text = "\n".join(lines + [""] + verdicts + ([""] + notes if notes else [])) + "\n"
    sys.stdout.write(text)
    if args.markdown_out:
        with open(args.markdown_out, "w", encoding="utf-8") as f:
            f.write("# Training step: nlpf vs PyTorch (ratios nlpf / peer; below 1 is nlpf ahead)\n\n" + text)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
