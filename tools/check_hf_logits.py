#!/usr/bin/env python3
"""Checks that Hugging Face gives nlpf's logits for a model directory nlpf wrote (e.g. phase1's best_model/).

Reads the JSON lines of tools/print_logits (index, input_ids, logits), runs
AutoModelForSequenceClassification.from_pretrained(DIR) in fp32 (eager attention, no TF32) on the same
input ids (HF's own tokenizer must give the same ids), and compares logits: max |a-b| <= atol + rtol|ref|
with rtol 1e-4, atol 1e-5 (DESIGN §7: the whole model within 1e-4 relative in fp32).
Usage: check_hf_logits.py --model DIR --ours LOGITS.jsonl --data FILE.tsv
Prints one line starting PASS or FAIL; exits 1 on failure.
"""
import argparse
import json
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    rows = [json.loads(line) for line in open(args.ours)]
    with open(args.data, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        sentences = [line.rstrip("\n").split("\t")[header.index("sentence")] for line in f if line.strip()]
    tok = AutoTokenizer.from_pretrained(args.model)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        args.model, output_loading_info=True, attn_implementation="eager", torch_dtype=torch.float32)
    model.eval()
    problems = [f"{k}: {v}" for k, v in info.items() if v]
    worst = 0.0
    for r in rows:
        ids = tok(sentences[r["index"]], truncation=True, max_length=128)["input_ids"]
        if ids != r["input_ids"]:
            problems.append(f"example {r['index']}: token ids differ")
            continue
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].double()
        ours = torch.tensor(r["logits"], dtype=torch.float64)
        err = ((ours - logits).abs() - 1e-4 * logits.abs()).max().item()
        worst = max(worst, (ours - logits).abs().max().item())
        if err > 1e-5:
            problems.append(f"example {r['index']}: logits {r['logits']} vs HF {logits.tolist()}")
    verdict = "PASS" if not problems else "FAIL"
    print(f"{verdict} {args.model}: {len(rows)} examples, max |logit difference| {worst:.3g}"
          + ("" if not problems else "; " + "; ".join(problems[:5])))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
