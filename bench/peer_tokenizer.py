#!/usr/bin/env python3
"""Peer side of the tokenizer benchmark: Hugging Face BertTokenizerFast on SST-2 train, one thread.

Same work as bench/tokenizer_bench.cc: every training sentence encoded with [CLS]/[SEP] and truncation to
128 tokens. Prints one JSON object: sentences, tokens, seconds (median of repeats), tokens_per_s.
Usage: peer_tokenizer.py --vocab-dir DIR --train-tsv FILE [--repeats 5]
"""
import argparse
import json
import os
import statistics
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread, as ours
os.environ["RAYON_NUM_THREADS"] = "1"

from transformers import BertTokenizerFast  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab-dir", required=True)
    ap.add_argument("--train-tsv", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-length", type=int, default=128)
    args = ap.parse_args()
    tok = BertTokenizerFast.from_pretrained(args.vocab_dir)
    assert tok("hello world")["input_ids"] == [101, 7592, 2088, 102], "tokenizer did not load the vocabulary"
    with open(args.train_tsv, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        col = header.index("sentence")
        sentences = [line.rstrip("\n").split("\t")[col] for line in f if line.strip()]
    results = {}
    for mode in ("batch", "loop"):
        times, tokens = [], 0
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            if mode == "batch":  # the fast path: one call over all sentences (Rust, one thread)
                ids = tok(sentences, truncation=True, max_length=args.max_length)["input_ids"]
            else:  # one call per sentence, as a training loop that tokenizes on the fly would
                ids = [tok(s, truncation=True, max_length=args.max_length)["input_ids"] for s in sentences]
            times.append(time.perf_counter() - t0)
            tokens = sum(len(x) for x in ids)
        sec = statistics.median(times)
        results[mode] = {"seconds": sec, "tokens": tokens, "tokens_per_s": tokens / sec}
    import transformers
    import tokenizers

    print(json.dumps({"sentences": len(sentences), "transformers": transformers.__version__,
                      "tokenizers": tokenizers.__version__, **results}))


if __name__ == "__main__":
    main()
