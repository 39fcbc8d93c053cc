#!/usr/bin/env python3
"""Prints the tokenizer benchmark's comparison line: ours (Google Benchmark JSON) vs HF (peer JSON).

Usage: report_tokenizer.py OURS.json PEER.json
"""
import json
import sys


def main():
    ours = json.load(open(sys.argv[1]))
    peer = json.load(open(sys.argv[2]))
    bm = [b for b in ours["benchmarks"] if b.get("run_type", "iteration") == "iteration"][0]
    ours_tps = bm["tokens_per_s"]
    for mode in ("batch", "loop"):
        p = peer[mode]
        if int(bm["tokens"]) != p["tokens"]:
            print(f"WARNING: token counts differ: ours {int(bm['tokens'])}, HF {p['tokens']}")
        print(f"tokenizer SST-2 train ({peer['sentences']} sentences, {p['tokens']} tokens, 1 thread): "
              f"ours {ours_tps / 1e6:.3f} M tok/s, HF BertTokenizerFast ({mode}) {p['tokens_per_s'] / 1e6:.3f} M tok/s, "
              f"ratio {ours_tps / p['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
