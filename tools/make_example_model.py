#!/usr/bin/env python3
"""Writes examples/tiny-bert/: config.json, vocab.txt and tokenizer_config.json of a tiny BERT that
`make run` trains from random initialisation (phase1 --init random) on tests/data/text/sample.tsv.

The vocabulary holds the special tokens, ASCII punctuation, the words of the sample and single letters with
their ## continuations, so every word tokenizes without [UNK]. Standard library only.
Usage: make_example_model.py [OUT_DIR]
"""
import json
import string
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
out = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "examples/tiny-bert"
words = set()
for line in (root / "tests/data/text/sample.tsv").read_text(encoding="utf-8").splitlines()[1:]:
    words.update(w for w in line.split("\t")[0].lower().split() if w.isalpha())
tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
tokens += list(string.punctuation) + list(string.digits) + list(string.ascii_lowercase)
tokens += ["##" + c for c in string.ascii_lowercase + string.digits]
tokens += sorted(words - set(tokens))
config = {
    "architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": len(tokens),
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 64, "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12,
    "pad_token_id": 0, "position_embedding_type": "absolute", "id2label": {"0": "negative", "1": "positive"},
    "label2id": {"negative": 0, "positive": 1},
}
out.mkdir(parents=True, exist_ok=True)
(out / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
(out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
(out / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}) + "\n", encoding="utf-8")
print(f"wrote {out} ({len(tokens)} tokens)")
