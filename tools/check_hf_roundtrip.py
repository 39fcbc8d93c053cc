#!/usr/bin/env python3
"""Checks that a model directory written by nlpf loads in Hugging Face transformers exactly.

Run where torch + transformers (v5) + safetensors exist (the GPU machine):
  python3 tools/check_hf_roundtrip.py --ours DIR_WRITTEN_BY_NLPF [--source SOURCE_DIR]
      [--text "hello world"] [--expect-ids 101,7592,2088,102 | --expect-ids none]

Checks: AutoModelForSequenceClassification.from_pretrained(DIR, output_loading_info=True) reports no
missing / unexpected / mismatched keys and no error messages; every tensor of the model equals the file's
tensor (safetensors.torch.load_file) bit for bit, with the same dtype and shape; AutoTokenizer loads DIR and
tokenizes --text to --expect-ids. With --source (the checkpoint nlpf read): every source tensor equals ours
bit for bit after HF's name mapping (converted with torch's round-to-nearest-even when we saved another
dtype), the two tokenizers agree on a few sentences, and the encoder of our model gives the same hidden
states and pooled output as AutoModel.from_pretrained(SOURCE) (exactly, on the CPU, when dtypes agree).
Prints one line starting PASS or FAIL; exits 1 on failure.
"""
import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

SENTENCES = ["hello world", "The movie was surprisingly GOOD, wasn't it?", "naïve café déjà vu", "unaffable 123"]


def bits(t):
    """The tensor's bit pattern as integers (NaN-safe exact comparison)."""
    view = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
    return t.contiguous().view(view)


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(bits(a), bits(b))


def load_dir_tensors(directory):
    """All tensors of a directory's model.safetensors or its shards."""
    directory = Path(directory)
    if (directory / "model.safetensors").exists():
        return load_file(directory / "model.safetensors")
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    out = {}
    for shard in sorted(set(index["weight_map"].values())):
        out.update(load_file(directory / shard))
    return out


def canonical(name):
    """nlpf's (and transformers') mapping of a stored name to BertForSequenceClassification's."""
    if name.startswith("cls."):
        return None
    name = name[len("bert."):] if name.startswith("bert.") else name
    if name in ("embeddings.position_ids", "embeddings.token_type_ids"):
        return None
    if name.endswith(".gamma"):
        name = name[: -len("gamma")] + "weight"
    if name.endswith(".beta"):
        name = name[: -len("beta")] + "bias"
    return name if name.startswith("classifier.") else "bert." + name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", required=True, help="directory written by nlpf (save_checkpoint)")
    ap.add_argument("--source", help="the checkpoint directory nlpf loaded before saving")
    ap.add_argument("--text", default="hello world")
    ap.add_argument("--expect-ids", default="101,7592,2088,102", help="comma-separated ids, or 'none'")
    args = ap.parse_args()
    failures, notes = [], []

    model, info = AutoModelForSequenceClassification.from_pretrained(args.ours, output_loading_info=True,
                                                                     dtype="auto")
    model.eval()
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        value = info.get(key)
        if value:
            failures.append(f"{key}: {sorted(map(str, value))[:5]}")

    ours = load_file(Path(args.ours) / "model.safetensors")
    state = model.state_dict()
    for name, tensor in ours.items():
        if name not in state:
            failures.append(f"{name} in model.safetensors but not in the model")
        elif not same_bits(state[name].cpu(), tensor):
            failures.append(f"{name}: model tensor ({state[name].dtype}, {list(state[name].shape)}) differs from "
                            f"the file ({tensor.dtype}, {list(tensor.shape)})")
    for name in state:
        if name not in ours:
            failures.append(f"{name} of the model is not in model.safetensors")
    notes.append(f"{len(ours)} tensors bit-exact" if not failures else f"{len(ours)} tensors")

    tokenizer = AutoTokenizer.from_pretrained(args.ours)
    ids = tokenizer(args.text)["input_ids"]
    if args.expect_ids != "none":
        expected = [int(x) for x in args.expect_ids.split(",")]
        if ids != expected:
            failures.append(f"tokenizer: {args.text!r} -> {ids}, expected {expected}")
    notes.append(f"{args.text!r} -> {ids}")

    if args.source:
        source = load_dir_tensors(args.source)
        compared = 0
        for name, tensor in source.items():
            mapped = canonical(name)
            if mapped is None:
                continue
            compared += 1
            if mapped not in ours:
                failures.append(f"source tensor {name} ({mapped}) is missing from ours")
                continue
            mine = ours[mapped]
            reference = tensor if tensor.dtype == mine.dtype else tensor.to(mine.dtype)
            if not same_bits(mine, reference):
                failures.append(f"{mapped} differs from source {name}")
        notes.append(f"{compared} source tensors compared")

        source_tokenizer = AutoTokenizer.from_pretrained(args.source)
        for sentence in SENTENCES:
            a, b = tokenizer(sentence)["input_ids"], source_tokenizer(sentence)["input_ids"]
            if a != b:
                failures.append(f"tokenizers differ on {sentence!r}: ours {a}, source {b}")

        base = AutoModel.from_pretrained(args.source, dtype="auto").eval()
        batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
        with torch.no_grad():
            theirs = base(**batch)
            mine = model.bert(**batch)
        exact = all(p.dtype == q.dtype for p, q in zip(base.parameters(), model.bert.parameters()))
        for field in ("last_hidden_state", "pooler_output"):
            x, y = getattr(mine, field), getattr(theirs, field)
            if y is None:
                continue
            ok = torch.equal(x, y) if exact else torch.allclose(x.float(), y.float(), rtol=2e-2, atol=2e-2)
            if not ok:
                failures.append(f"{field} differs from the source model (max |diff| "
                                f"{(x.float() - y.float()).abs().max().item():.3g})")
        notes.append("encoder outputs " + ("identical" if exact else "close (dtype changed)"))

    with torch.no_grad():
        logits = model(**tokenizer(args.text, return_tensors="pt")).logits
    notes.append(f"logits {[round(v, 5) for v in logits[0].float().tolist()]}")
    status = "PASS" if not failures else "FAIL"
    print(f"{status} check_hf_roundtrip {args.ours}: " + "; ".join(failures[:10] if failures else notes))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
