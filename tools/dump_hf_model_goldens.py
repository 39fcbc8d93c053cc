#!/usr/bin/env python3
"""Golden logits, loss and parameter gradients of Hugging Face's BertForSequenceClassification, for
tests/golden/bert_model_golden_test.cc. Runs on CPU-only or CUDA torch (always computes on the CPU in
float32, eager attention, "highest" matmul precision: no TF32) with transformers, safetensors and numpy.

Two sizes, both with dropout probabilities 0 (so TRAIN and EVAL agree) and 2 labels:
  tiny/       vocab = the first 1000 lines of --vocab (real [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102),
              hidden 32, 2 layers, 4 heads, intermediate 64, 64 positions, initializer_range 0.2.
              Weights from torch.manual_seed (HF's own init, then every bias and LayerNorm parameter
              perturbed so those paths are non-trivial), written by save_pretrained: tiny/model/ is a
              complete checkpoint directory.
              goldens.safetensors holds every gradient in full.
  base_slice/ the bert-base shape (hidden 768, 12 heads, intermediate 3072, 128 positions) with 2 layers
              and vocab 1000. Its weights (15.6M parameters, 62 MB) are too large to commit, so they are not
              random: element e of parameter number i (bert_parameter_specs order = HF's named_parameters
              order) is a multiple of 2^-12 computed from splitmix64((i << 32) + e) (formula_weights),
              which the C++ test reproduces bit for bit. Only config.json is committed; goldens.safetensors
              holds, per parameter, the gradient at a deterministic subset of flat indices
              ("grad_index.NAME" I32, "grad.NAME" F32: the first 64, the last 64 and 512 seeded random
              indices, or all when numel <= 1024) and "grad_stats.NAME" F32 [3] = (sum, L2 norm,
              sum of |g|) over all elements.

goldens.safetensors also holds "logits" [B, 2], "loss" [1] (mean cross-entropy) and the batch
("input_ids", "token_type_ids", "attention_mask" [B, T], "labels" [B], all I32). meta.json records the
library versions. Before writing, the script checks that the saved tiny model reloads with no missing,
unexpected or mismatched keys and gives identical logits, and that the formula weights were all assigned.

Usage: tools/dump_hf_model_goldens.py --vocab ../shared/models/bert-base-uncased/vocab.txt \
           [--out tests/data/model]
"""

import argparse
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import safetensors
import safetensors.torch
import torch
import transformers
from transformers import BertConfig, BertForSequenceClassification

VOCAB_SIZE = 1000
TINY_SEED = 1234
SUBSET_HEAD = 64
SUBSET_RANDOM = 512
SUBSET_ALL_BELOW = 1024


def canonical_names(num_layers):
    """bert_parameter_specs order (src/model/checkpoint.cc)."""
    names = ["bert.embeddings." + n for n in ("word_embeddings.weight", "position_embeddings.weight",
                                               "token_type_embeddings.weight", "LayerNorm.weight",
                                               "LayerNorm.bias")]
    for layer in range(num_layers):
        p = f"bert.encoder.layer.{layer}."
        for proj in ("query", "key", "value"):
            names += [p + f"attention.self.{proj}.weight", p + f"attention.self.{proj}.bias"]
        for module in ("attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                       "output.dense", "output.LayerNorm"):
            names += [p + module + ".weight", p + module + ".bias"]
    names += ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"]
    return names


def splitmix64(x):
    """splitmix64's output function on uint64 arrays (wrapping arithmetic, as C++ uint64_t)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def formula_weights(index, name, shape):
    """Parameter `index` of the base slice: exact multiples of 2^-12 (bert_model_golden_test.cc mirrors it).
    r = (h >> 40) % 129 - 64 in [-64, 64]; LayerNorm weight 1 + r/512, other weights r/2048 (std ~0.018,
    near HF's 0.02), biases (LayerNorm's too) r/4096."""
    numel = int(np.prod(shape))
    h = splitmix64((np.uint64(index) << np.uint64(32)) + np.arange(numel, dtype=np.uint64))
    r = ((h >> np.uint64(40)) % np.uint64(129)).astype(np.int64) - 64
    if name.endswith(".bias"):
        v = r / 4096.0
    elif "LayerNorm" in name:
        v = 1.0 + r / 512.0
    else:
        v = r / 2048.0
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def make_config(size):
    common = dict(vocab_size=VOCAB_SIZE, num_hidden_layers=2, type_vocab_size=2, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, num_labels=2, pad_token_id=0)
    if size == "tiny":
        # initializer_range 0.2 rather than 0.02: at hidden 32 the default leaves the pooled [CLS] almost
        # independent of the input, and the goldens would barely test the encoder.
        return BertConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64,
                          max_position_embeddings=64, initializer_range=0.2, **common)
    return BertConfig(hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                      max_position_embeddings=128, **common)


def make_batch(size):
    """Padded batch with different lengths, a sentence pair (token types 0 and 1) and an [UNK]."""
    rng = np.random.RandomState(7 if size == "tiny" else 8)
    T = 12
    # (length of segment a, length of segment b or 0) per row; [CLS] a [SEP] (b [SEP]).
    rows = [(5, 4), (6, 0), (3, 0)] if size == "tiny" else [(4, 5), (5, 0)]
    ids, types, mask = [], [], []
    for a, b in rows:
        words = list(rng.randint(103, VOCAB_SIZE, size=a + b))
        row_ids = [101] + words[:a] + [102] + (words[a:] + [102] if b else [])
        row_types = [0] * (a + 2) + ([1] * (b + 1) if b else [])
        n = len(row_ids)
        ids.append(row_ids + [0] * (T - n))
        types.append(row_types + [0] * (T - n))
        mask.append([1] * n + [0] * (T - n))
    ids[1][2] = 100  # [UNK]
    labels = [1, 0, 1][: len(rows)]
    as_long = lambda v: torch.tensor(v, dtype=torch.long)
    return as_long(ids), as_long(types), as_long(mask), as_long(labels)


def build_model(size, config):
    torch.manual_seed(TINY_SEED)
    model = BertForSequenceClassification._from_config(config, attn_implementation="eager")
    names = canonical_names(config.num_hidden_layers)
    params = dict(model.named_parameters())
    assert list(params) == names, f"named_parameters order differs from bert_parameter_specs: {list(params)}"
    with torch.no_grad():
        for i, name in enumerate(names):
            p = params[name]
            if size == "tiny":
                if name.endswith(".bias") or "LayerNorm" in name:
                    p.add_(0.1 * torch.randn_like(p))
            else:
                p.copy_(formula_weights(i, name, tuple(p.shape)))
                assert torch.equal(p, formula_weights(i, name, tuple(p.shape))), name
    return model.float().eval()


def run(model, batch):
    ids, types, mask, labels = batch
    model.zero_grad()
    out = model(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
    out.loss.backward()
    return out.logits.detach().clone(), out.loss.detach().clone()


def gradient_entries(model, size):
    entries = {}
    for i, (name, p) in enumerate(model.named_parameters()):
        g = p.grad.detach().float().contiguous()
        assert torch.isfinite(g).all(), name
        if size == "tiny":
            entries["grad." + name] = g
            continue
        flat = g.reshape(-1)
        n = flat.numel()
        if n <= SUBSET_ALL_BELOW:
            index = np.arange(n)
        else:
            sampled = np.random.RandomState(1000 + i).choice(n, SUBSET_RANDOM, replace=False)
            head_tail = [np.arange(SUBSET_HEAD), np.arange(n - SUBSET_HEAD, n)]
            index = np.unique(np.concatenate(head_tail + [sampled]))
        index_t = torch.from_numpy(index.astype(np.int64))
        entries["grad_index." + name] = index_t.to(torch.int32)
        entries["grad." + name] = flat[index_t].contiguous()
        g64 = flat.double()
        entries["grad_stats." + name] = torch.tensor(
            [g64.sum().item(), g64.norm().item(), g64.abs().sum().item()], dtype=torch.float32)
    return entries


def check_reload(model_dir, model, batch, logits):
    reloaded, info = BertForSequenceClassification.from_pretrained(
        model_dir, output_loading_info=True, attn_implementation="eager")
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info.get(key), f"{model_dir}: reload reports {key} = {info[key]}"
    reloaded.float().eval()
    ids, types, mask, _ = batch
    with torch.no_grad():
        again = reloaded(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    assert torch.equal(again, logits), f"{model_dir}: reloaded logits differ:\n{again}\n{logits}"


def dump(size, vocab_lines, staging):
    config = make_config(size)
    model = build_model(size, config)
    batch = make_batch(size)
    logits, loss = run(model, batch)
    assert torch.isfinite(logits).all() and torch.isfinite(loss), f"{size}: non-finite output"
    # Known answer: the loss is HF's mean cross-entropy of these logits.
    ref = torch.nn.functional.cross_entropy(logits.double(), batch[3])
    assert abs(ref.item() - loss.item()) <= 1e-6 * max(1.0, abs(ref.item())), (ref.item(), loss.item())

    out = staging / size
    out.mkdir(parents=True)
    if size == "tiny":
        model_dir = out / "model"
        model.save_pretrained(model_dir, safe_serialization=True)
        (model_dir / "vocab.txt").write_text("".join(line + "\n" for line in vocab_lines), encoding="utf-8")
        (model_dir / "tokenizer_config.json").write_text(
            json.dumps({"do_lower_case": True, "model_max_length": 64, "tokenizer_class": "BertTokenizer"},
                       indent=2, sort_keys=True) + "\n", encoding="utf-8")
        check_reload(model_dir, model, batch, logits)
    else:
        config.save_pretrained(out)

    ids, types, mask, labels = batch
    tensors = {
        "logits": logits.float().contiguous(),
        "loss": loss.float().reshape(1),
        "input_ids": ids.to(torch.int32),
        "token_type_ids": types.to(torch.int32),
        "attention_mask": mask.to(torch.int32),
        "labels": labels.to(torch.int32),
    }
    tensors.update(gradient_entries(model, size))
    metadata = {"size": size, "weights": "torch.manual_seed(%d)" % TINY_SEED if size == "tiny"
                else "splitmix64 formula (formula_weights)"}
    safetensors.torch.save_file(tensors, str(out / "goldens.safetensors"), metadata=metadata)
    print(f"{size}: logits {logits.tolist()} loss {loss.item():.8f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", required=True, type=Path, help="bert-base-uncased vocab.txt")
    default_out = Path(__file__).resolve().parent.parent / "tests/data/model"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()

    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True)

    vocab_lines = args.vocab.read_text(encoding="utf-8").splitlines()[:VOCAB_SIZE]
    assert len(vocab_lines) == VOCAB_SIZE, f"{args.vocab}: fewer than {VOCAB_SIZE} tokens"
    expected = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]"}
    for i, token in expected.items():
        assert vocab_lines[i] == token, f"{args.vocab}: line {i + 1} is {vocab_lines[i]!r}, expected {token}"

    # Everything is written under a temporary directory and moved into place at the end.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".model_goldens_", dir=args.out.parent))
    try:
        for size in ("tiny", "base_slice"):
            dump(size, vocab_lines, staging)
        meta = {
            "script": "tools/dump_hf_model_goldens.py",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "device": "cpu",
            "matmul_precision": torch.get_float32_matmul_precision(),
            "attn_implementation": "eager",
        }
        meta_text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        (staging / "meta.json").write_text(meta_text, encoding="utf-8")
        for path in [staging, *staging.rglob("*")]:  # mkdtemp and save_file create private modes
            path.chmod(0o755 if path.is_dir() else 0o644)
        if args.out.exists():
            shutil.rmtree(args.out)
        staging.rename(args.out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
