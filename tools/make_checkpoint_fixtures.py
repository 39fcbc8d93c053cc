#!/usr/bin/env python3
"""Writes the tiny BERT checkpoint fixtures under tests/data/checkpoint/ (deterministic; stdlib + numpy).

A BertForSequenceClassification with vocab 32 (specials first), hidden 8, 2 layers, 2 heads, intermediate 16,
32 positions, 2 labels, in Hugging Face's directory layout, written as:
  tiny/            F32 model.safetensors (also the demo model of `make run` until training exists)
  tiny_f16/        the same weights rounded to F16      tiny_bf16/   rounded to BF16
  tiny_sharded/    F32 in two shards + model.safetensors.index.json
  tiny_bertmodel/  BertModel names (no "bert." prefix), a cls.* MLM head, the position_ids buffer, no classifier
safetensors is written by hand as the Rust crate writes it: entries by element size then name, compact
JSON header with __metadata__ {"format": "pt"} first, padded with spaces to a multiple of 8.
Usage: python3 tools/make_checkpoint_fixtures.py [OUT_DIR]   (default tests/data/checkpoint)
"""
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie", "film", "is", "was", "not",
         "very", "good", "great", "fun", "bad", "awful", "boring", "it", "this", "and", "i", "love", "hate",
         "hello", "world", ",", ".", "!", "##s", "##ly"]
HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS, TYPES = 8, 2, 2, 16, 32, 2
LABELS = ["negative", "positive"]
SEED = 20261128

CONFIG = {
    "architectures": ["BertForSequenceClassification"],
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": HIDDEN,
    "id2label": {str(i): label for i, label in enumerate(LABELS)},
    "initializer_range": 0.02,
    "intermediate_size": INTERMEDIATE,
    "label2id": {label: i for i, label in enumerate(LABELS)},
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": POSITIONS,
    "model_type": "bert",
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "problem_type": None,
    "type_vocab_size": TYPES,
    "vocab_size": len(VOCAB),
}
TOKENIZER_CONFIG = {"do_lower_case": True, "model_max_length": POSITIONS, "tokenizer_class": "BertTokenizer"}
ELEMENT_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}


def parameters():
    """Canonical BertForSequenceClassification parameters, in module order, as float32 arrays."""
    rng = np.random.default_rng(SEED)
    out = {}

    def linear(name, n_out, n_in):
        out[name + ".weight"] = rng.normal(0.0, 0.2, (n_out, n_in))
        out[name + ".bias"] = rng.normal(0.0, 0.05, (n_out,))

    def layer_norm(name):
        out[name + ".weight"] = 1.0 + rng.normal(0.0, 0.1, (HIDDEN,))
        out[name + ".bias"] = rng.normal(0.0, 0.05, (HIDDEN,))

    out["bert.embeddings.word_embeddings.weight"] = rng.normal(0.0, 0.5, (len(VOCAB), HIDDEN))
    out["bert.embeddings.position_embeddings.weight"] = rng.normal(0.0, 0.1, (POSITIONS, HIDDEN))
    out["bert.embeddings.token_type_embeddings.weight"] = rng.normal(0.0, 0.1, (TYPES, HIDDEN))
    layer_norm("bert.embeddings.LayerNorm")
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}."
        for projection in ("query", "key", "value"):
            linear(p + "attention.self." + projection, HIDDEN, HIDDEN)
        linear(p + "attention.output.dense", HIDDEN, HIDDEN)
        layer_norm(p + "attention.output.LayerNorm")
        linear(p + "intermediate.dense", INTERMEDIATE, HIDDEN)
        linear(p + "output.dense", HIDDEN, INTERMEDIATE)
        layer_norm(p + "output.LayerNorm")
    linear("bert.pooler.dense", HIDDEN, HIDDEN)
    linear("classifier", len(LABELS), HIDDEN)
    return {name: value.astype(np.float32) for name, value in out.items()}


def to_bf16_bits(a):
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def encode(array, dtype):
    """(dtype name, little-endian bytes) of an array stored as `dtype`."""
    if dtype == "F32":
        return array.astype("<f4").tobytes()
    if dtype == "F16":
        return array.astype("<f2").tobytes()
    if dtype == "BF16":
        return to_bf16_bits(array).astype("<u2").tobytes()
    if dtype == "I64":
        return array.astype("<i8").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors):
    """tensors: {name: (dtype, array)}."""
    order = sorted(tensors, key=lambda n: (-ELEMENT_SIZE[tensors[n][0]], n))
    header = {"__metadata__": {"format": "pt"}}
    chunks, offset = [], 0
    for name in order:
        dtype, array = tensors[name]
        data = encode(array, dtype)
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def write_common(directory, config):
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (directory / "vocab.txt").write_text("".join(token + "\n" for token in VOCAB))
    (directory / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2, sort_keys=True) + "\n")


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/data/checkpoint"
    params = parameters()
    for name in ("tiny", "tiny_f16", "tiny_bf16", "tiny_sharded", "tiny_bertmodel"):
        shutil.rmtree(out / name, ignore_errors=True)

    for name, dtype, torch_dtype in (("tiny", "F32", "float32"), ("tiny_f16", "F16", "float16"),
                                     ("tiny_bf16", "BF16", "bfloat16")):
        write_common(out / name, dict(CONFIG, dtype=torch_dtype))
        write_safetensors(out / name / "model.safetensors", {n: (dtype, a) for n, a in params.items()})

    sharded = out / "tiny_sharded"
    write_common(sharded, dict(CONFIG, dtype="float32"))
    names = list(params)
    split = names.index("bert.encoder.layer.1.attention.self.query.weight")
    shards = {"model-00001-of-00002.safetensors": names[:split], "model-00002-of-00002.safetensors": names[split:]}
    weight_map = {}
    for shard, shard_names in shards.items():
        write_safetensors(sharded / shard, {n: ("F32", params[n]) for n in shard_names})
        weight_map.update({n: shard for n in shard_names})
    total = sum(a.nbytes for a in params.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")

    bertmodel = out / "tiny_bertmodel"
    config = {k: v for k, v in CONFIG.items() if k not in ("id2label", "label2id", "problem_type")}
    write_common(bertmodel, dict(config, architectures=["BertModel"], dtype="float32"))
    tensors = {n[len("bert."):]: ("F32", a) for n, a in params.items() if n.startswith("bert.")}
    tensors["embeddings.position_ids"] = ("I64", np.arange(POSITIONS, dtype=np.int64).reshape(1, POSITIONS))
    rng = np.random.default_rng(SEED + 1)
    tensors["cls.predictions.bias"] = ("F32", np.zeros(len(VOCAB), np.float32))
    tensors["cls.predictions.transform.dense.weight"] = ("F32", rng.normal(0, 0.2, (HIDDEN, HIDDEN)).astype(np.float32))
    tensors["cls.predictions.transform.dense.bias"] = ("F32", np.zeros(HIDDEN, np.float32))
    tensors["cls.predictions.transform.LayerNorm.weight"] = ("F32", np.ones(HIDDEN, np.float32))
    tensors["cls.predictions.transform.LayerNorm.bias"] = ("F32", np.zeros(HIDDEN, np.float32))
    write_safetensors(bertmodel / "model.safetensors", tensors)

    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({size} bytes)")


if __name__ == "__main__":
    main()
