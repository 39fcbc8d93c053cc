#!/usr/bin/env python3
"""Writes the tokenizer goldens that tests/golden/tokenizer_golden_test.cc compares nlpf's WordPiece with.

The reference is transformers' slow (pure Python) BertTokenizer: BertTokenizerLegacy in transformers 5.x,
BertTokenizer in 4.x. BertTokenizerFast (the Rust tokenizer) is run on the same inputs and every
disagreement is recorded in tokenizer_goldens_meta.json; the goldens follow the slow one.

Usage:
  python3 tools/dump_tokenizer_goldens.py --vocab-dir ../shared/models/bert-base-uncased \
      --dev-tsv ../shared/data/sst2/dev.tsv --hard-cases tests/data/tokenizer/hard_cases.jsonl \
      --out-dir tests/data/tokenizer

Outputs (in --out-dir): sst2_dev_goldens.jsonl ({"text", "ids_128", "ids_16"} per dev sentence, in file
order), hard_case_goldens.jsonl ({"id", "text", "text_b"?, "max_length", "input_ids", "token_type_ids"})
and tokenizer_goldens_meta.json (versions, counts, fast/slow disagreements).
"""

import argparse
import csv
import json
import os
import platform
import sys
import unicodedata

KNOWN_TEXT = "hello world"
KNOWN_IDS = [101, 7592, 2088, 102]


def load_tokenizers(vocab_dir):
    import transformers
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # pair truncation warns on every call
    # BertTokenizer(vocab_file=...) silently builds a 5-token vocabulary in transformers 5.x:
    # from_pretrained(folder) is the only constructor trusted here, and every tokenizer must give the
    # known answer before anything is written.
    default = transformers.BertTokenizer.from_pretrained(vocab_dir)
    if default.is_fast:
        slow_cls = getattr(transformers, "BertTokenizerLegacy", None)
        if slow_cls is None:
            from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as slow_cls
        slow = slow_cls.from_pretrained(vocab_dir)
    else:
        slow = default
    fast = transformers.BertTokenizerFast.from_pretrained(vocab_dir)
    for name, tok, want_fast in (("BertTokenizer", default, None), ("slow", slow, False), ("fast", fast, True)):
        got = tok(KNOWN_TEXT)["input_ids"]
        if got != KNOWN_IDS:
            sys.exit(f"{name} ({type(tok).__name__}) gives {got} for {KNOWN_TEXT!r}, expected {KNOWN_IDS}: "
                     f"wrong vocabulary in {vocab_dir}?")
        if want_fast is not None and tok.is_fast != want_fast:
            sys.exit(f"{type(tok).__name__} is_fast={tok.is_fast}, expected {want_fast}")
    return transformers.__version__, slow, fast


def encode(tok, text, text_b, max_length):
    enc = tok(text, text_b, max_length=max_length, truncation=True, return_token_type_ids=True)
    return enc["input_ids"], enc["token_type_ids"]


def read_dev(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0][:1] != ["sentence"]:
        sys.exit(f"{path}: expected a header starting with 'sentence'")
    return [row[0] for row in rows[1:]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-dir", required=True, help="folder with vocab.txt and tokenizer_config.json")
    parser.add_argument("--dev-tsv", required=True, help="SST-2 dev.tsv (sentence<TAB>label, with header)")
    parser.add_argument("--hard-cases", required=True, help="hard_cases.jsonl")
    parser.add_argument("--out-dir", required=True)
    args = parser.parse_args()

    version, slow, fast = load_tokenizers(args.vocab_dir)
    sentences = read_dev(args.dev_tsv)
    with open(args.hard_cases, encoding="utf-8") as f:
        cases = [json.loads(line) for line in f if line.strip()]

    disagreements = []
    dev_rows = []
    for i, text in enumerate(sentences):
        row = {"text": text}
        for max_length in (128, 16):
            ids, _ = encode(slow, text, None, max_length)
            fast_ids, _ = encode(fast, text, None, max_length)
            if ids != fast_ids:
                disagreements.append({"where": f"dev line {i + 2}", "max_length": max_length,
                                      "slow": ids, "fast": fast_ids})
            row[f"ids_{max_length}"] = ids
        dev_rows.append(row)

    case_rows = []
    for case in cases:
        text, text_b, max_length = case["text"], case.get("text_b"), case["max_length"]
        ids, types = encode(slow, text, text_b, max_length)
        fast_ids, fast_types = encode(fast, text, text_b, max_length)
        if (ids, types) != (fast_ids, fast_types):
            disagreements.append({"where": f"hard case {case['id']}", "max_length": max_length,
                                  "slow": ids, "fast": fast_ids})
        row = {"id": case["id"], "text": text}
        if text_b is not None:
            row["text_b"] = text_b
        row.update({"max_length": max_length, "input_ids": ids, "token_type_ids": types})
        case_rows.append(row)

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "sst2_dev_goldens.jsonl"), "w", encoding="utf-8") as f:
        for row in dev_rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")
    with open(os.path.join(args.out_dir, "hard_case_goldens.jsonl"), "w", encoding="utf-8") as f:
        for row in case_rows:
            f.write(json.dumps(row, ensure_ascii=True) + "\n")
    meta = {
        "transformers": version,
        "python": platform.python_version(),
        "unicodedata": unicodedata.unidata_version,
        "reference": f"{type(slow).__module__}.{type(slow).__name__} (slow)",
        "compared_with": f"{type(fast).__module__}.{type(fast).__name__} (fast)",
        "dev_rows": len(dev_rows),
        "hard_cases": len(case_rows),
        "fast_slow_disagreements": disagreements,
    }
    with open(os.path.join(args.out_dir, "tokenizer_goldens_meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print(f"transformers {version}: {len(dev_rows)} dev rows, {len(case_rows)} hard cases, "
          f"{len(disagreements)} fast/slow disagreements -> {args.out_dir}")


if __name__ == "__main__":
    main()
