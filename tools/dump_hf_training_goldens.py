#!/usr/bin/env python3
"""Golden 20-step fine-tune of a tiny Hugging Face BertForSequenceClassification with the reference recipe's
optimiser (torch AdamW in the HF Trainer's two parameter groups, linear warmup/decay, clipping at 1.0), for
the trainer tests (src/train). Runs on CPU-only or CUDA torch; always computes on the CPU in float32, eager
attention, "highest" matmul precision (no TF32), deterministic algorithms, dropout probabilities 0.

Model (same shape as tools/dump_hf_model_goldens.py's tiny): vocab = the first 1000 lines of --vocab, hidden
32, 2 layers, 4 heads, intermediate 64, 64 positions, 2 labels, initializer_range 0.2; weights from
torch.manual_seed (HF's own init, then every bias and LayerNorm parameter perturbed by 0.1 * randn so those
paths are non-trivial). tiny/model/ is the initial checkpoint (save_pretrained + vocab.txt +
tokenizer_config.json).

tiny/goldens.safetensors (S = 20 steps, B = 4 rows, T = 12 tokens):
  input_ids, attention_mask, token_type_ids  I32 [S, B, T]  every step has one row of the full length T;
      the others have 6..T real tokens, padded with [PAD] = 0 and mask 0; some rows are sentence pairs
      (token type 1 on the second segment)
  labels     I32 [S, B]
  loss       F32 [S]  model(...).loss before the step's update
  lr         F32 [S]  the learning rate the step's update uses (scheduler.get_last_lr()[0])
  grad_norm  F32 [S]  total L2 norm of all gradients before clipping (clip_grad_norm_'s return value)
  final.NAME F32      every parameter after the 20 updates (HF names, as in model/model.safetensors)
  __metadata__: learning_rate, weight_decay, warmup_steps, total_steps, max_grad_norm, adam_beta1,
      adam_beta2, adam_epsilon, seed (decimal strings).
One step: loss = model(**batch).loss; loss.backward(); grad_norm = clip_grad_norm_(params, 1.0);
optimizer.step(); scheduler.step(); optimizer.zero_grad(). Step 0 runs at lr 0 (warmup), so it only moves
AdamW's moments; the script checks the parameters are unchanged by it.

Noise: the gradient of every attention.self.key.bias is exactly zero in exact arithmetic (q.(k_j + b) shifts
all of a query's scores by the same q.b, which softmax cancels), so in float it is rounding noise that AdamW
turns into steps of up to about lr each way: final.*.key.bias is noise-dominated (moves within sum(lr)
= 0.010 of its start; the float64 replay barely moves it) and an engine matches torch's float32 value only
while its rounding residuals do; metadata "noise_dominated" names it for tests to relax. Everything else is
well conditioned: the script replays the 20 steps in float64 and asserts losses, gradient norms and final
parameters agree with the float32 run to CONDITIONING_TOLERANCE (measured: ~3e-7 relative, 2e-6 absolute).

Known answers checked before anything is written: the decay set is every *.weight except LayerNorm.weight;
the lr sequence is the schedule formula; each loss is the cross-entropy of its logits; each grad_norm equals
a float64 recomputation; padding a batch further changes no loss; the saved initial model reloads with no
missing/unexpected keys and identical logits; a second complete run writes byte-identical files. meta.json
records the library versions.

Usage: tools/dump_hf_training_goldens.py --vocab ../shared/models/bert-base-uncased/vocab.txt \
           [--out tests/data/training]
"""

import argparse
import filecmp
import json
import math
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
from transformers import BertConfig, BertForSequenceClassification, get_linear_schedule_with_warmup

VOCAB_SIZE = 1000
INIT_SEED = 4321
BATCH_SEED = 17
STEPS = 20
BATCH = 4
TOKENS = 12
MIN_TOKENS = 6
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.01
WARMUP_STEPS = math.ceil(0.06 * STEPS)  # = 2, as the Trainer rounds warmup_ratio * total steps up
MAX_GRAD_NORM = 1.0
BETAS = (0.9, 0.999)
EPSILON = 1e-8
CONDITIONING_TOLERANCE = 2e-5  # float32 vs float64 replay: absolute on parameters, relative on loss/grad norm
NOISE_DOMINATED = "attention.self.key.bias"


def make_config():
    # initializer_range 0.2 rather than 0.02: at hidden 32 the default leaves the pooled [CLS] almost
    # independent of the input, and the logits (so the losses) would barely differ between batches.
    return BertConfig(vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=64, type_vocab_size=2,
                      initializer_range=0.2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      num_labels=2, pad_token_id=0)


def build_model(config):
    torch.manual_seed(INIT_SEED)
    model = BertForSequenceClassification._from_config(config, attn_implementation="eager")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") or "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    # train() for the recipe's sake; with probabilities 0 dropout is the identity either way.
    return model.float().train()


def make_batches():
    """[S, B, T] ids/types/mask and [S, B] labels: row 0 of every step is full length (T), the rest 6..T."""
    rng = np.random.RandomState(BATCH_SEED)
    ids = np.zeros((STEPS, BATCH, TOKENS), dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for s in range(STEPS):
        lengths = [TOKENS] + list(rng.randint(MIN_TOKENS, TOKENS + 1, size=BATCH - 1))
        rng.shuffle(lengths)
        for b, n in enumerate(lengths):
            words = list(rng.randint(103, VOCAB_SIZE, size=n))
            if rng.rand() < 0.15:
                words[rng.randint(1, n - 1)] = 100  # [UNK]
            row = [101] + words[1 : n - 1] + [102]
            row_types = [0] * n
            if rng.rand() < 0.5 and n >= 7:  # a sentence pair: [CLS] a [SEP] b [SEP]
                first = rng.randint(2, n - 3)  # [SEP] position ends segment a
                row[first] = 102
                row_types = [0] * (first + 1) + [1] * (n - first - 1)
            ids[s, b, :n] = row
            types[s, b, :n] = row_types
            mask[s, b, :n] = 1
    labels = rng.randint(0, 2, size=(STEPS, BATCH))
    assert (types == 1).any() and (ids == 100).any() and (mask == 0).any(), "batches miss a case"
    assert (mask.sum(axis=2).max(axis=1) == TOKENS).all()
    as_long = lambda a: torch.from_numpy(a).long()
    return as_long(ids), as_long(types), as_long(mask), as_long(labels)


def decay_parameter_names(model):
    """The names the HF Trainer gives weight decay (Trainer.create_optimizer's first group)."""
    get_names = getattr(transformers.Trainer, "get_decay_parameter_names", None)
    if get_names is not None:
        names = get_names(None, model)  # uses no state of the Trainer
    else:
        from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
        from transformers.trainer_pt_utils import get_parameter_names
        names = [n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n]
    return set(names)


def expected_lr(step):
    """get_linear_schedule_with_warmup's lambda times the base learning rate."""
    if step < WARMUP_STEPS:
        return LEARNING_RATE * step / max(1, WARMUP_STEPS)
    return LEARNING_RATE * max(0.0, (STEPS - step) / max(1, STEPS - WARMUP_STEPS))


def padded_loss(model, ids, types, mask, labels, extra):
    """The loss with `extra` more padding columns (must equal the unpadded loss: padding is masked)."""
    pad = lambda t: torch.nn.functional.pad(t, (0, extra))
    with torch.no_grad():
        return model(input_ids=pad(ids), token_type_ids=pad(types), attention_mask=pad(mask),
                     labels=labels).loss.item()


def train(model, batches):
    ids, types, mask, labels = batches
    params = dict(model.named_parameters())
    decay = decay_parameter_names(model)
    expected_decay = {n for n in params if n.endswith(".weight") and "LayerNorm" not in n}
    assert decay == expected_decay, f"decay set differs: {sorted(decay ^ expected_decay)}"
    groups = [
        {"params": [p for n, p in params.items() if n in decay], "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in params.items() if n not in decay], "weight_decay": 0.0},
    ]
    # foreach=False: the single-tensor loop, the textbook update order, on any torch build.
    optimizer = torch.optim.AdamW(groups, lr=LEARNING_RATE, betas=BETAS, eps=EPSILON, foreach=False)
    scheduler = get_linear_schedule_with_warmup(optimizer, WARMUP_STEPS, STEPS)
    losses, lrs, grad_norms = [], [], []
    for s in range(STEPS):
        out = model(input_ids=ids[s], token_type_ids=types[s], attention_mask=mask[s], labels=labels[s])
        ref = torch.nn.functional.cross_entropy(out.logits.detach().double(), labels[s]).item()
        assert abs(ref - out.loss.item()) <= 1e-6 * max(1.0, abs(ref)), (s, ref, out.loss.item())
        extra = padded_loss(model, ids[s], types[s], mask[s], labels[s], 5)
        assert abs(extra - out.loss.item()) <= 1e-6 * max(1.0, abs(ref)), (s, extra, out.loss.item())
        out.loss.backward()
        norm64 = math.sqrt(sum(p.grad.double().pow(2).sum().item() for p in params.values()))
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM).item()
        assert abs(norm64 - grad_norm) <= 1e-5 * norm64, (s, norm64, grad_norm)
        lr = scheduler.get_last_lr()[0]
        assert math.isclose(lr, expected_lr(s), rel_tol=1e-12, abs_tol=1e-18), (s, lr, expected_lr(s))
        before = {n: p.detach().clone() for n, p in params.items()} if s == 0 else None
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if before is not None:  # lr 0: AdamW moves only its moments
            for n, p in params.items():
                assert torch.equal(before[n], p), f"step 0 at lr 0 changed {n}"
        losses.append(out.loss.item())
        lrs.append(lr)
        grad_norms.append(grad_norm)
    assert all(math.isfinite(v) for v in losses + grad_norms), "non-finite loss or gradient norm"
    return losses, lrs, grad_norms


def check_reload(model_dir, model, batches):
    reloaded, info = BertForSequenceClassification.from_pretrained(
        model_dir, output_loading_info=True, attn_implementation="eager")
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info.get(key), f"{model_dir}: reload reports {key} = {info[key]}"
    reloaded.float().train()
    ids, types, mask, _ = batches
    with torch.no_grad():
        for s in (0, STEPS - 1):
            want = model(input_ids=ids[s], token_type_ids=types[s], attention_mask=mask[s]).logits
            got = reloaded(input_ids=ids[s], token_type_ids=types[s], attention_mask=mask[s]).logits
            assert torch.equal(got, want), f"{model_dir}: reloaded logits differ:\n{got}\n{want}"
    # Different batches must give different logits, or the fixture would not exercise the encoder.
    with torch.no_grad():
        first = model(input_ids=ids[0], token_type_ids=types[0], attention_mask=mask[0]).logits
    assert (first[:, 0] - first[:, 1]).std().item() > 1e-3, f"logits barely differ between rows: {first}"


def dump(vocab_lines, out):
    """Writes out/tiny/ and returns (losses, lrs, grad_norms)."""
    config = make_config()
    model = build_model(config)
    batches = make_batches()
    tiny = out / "tiny"
    model_dir = tiny / "model"
    model.save_pretrained(model_dir, safe_serialization=True)
    (model_dir / "vocab.txt").write_text("".join(line + "\n" for line in vocab_lines), encoding="utf-8")
    (model_dir / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "model_max_length": 64, "tokenizer_class": "BertTokenizer"},
                   indent=2, sort_keys=True) + "\n", encoding="utf-8")
    check_reload(model_dir, model, batches)

    losses, lrs, grad_norms = train(model, batches)
    ids, types, mask, labels = batches
    tensors = {
        "input_ids": ids.to(torch.int32),
        "attention_mask": mask.to(torch.int32),
        "token_type_ids": types.to(torch.int32),
        "labels": labels.to(torch.int32),
        "loss": torch.tensor(losses, dtype=torch.float32),
        "lr": torch.tensor(lrs, dtype=torch.float32),
        "grad_norm": torch.tensor(grad_norms, dtype=torch.float32),
    }
    for name, p in model.named_parameters():
        tensors["final." + name] = p.detach().float().contiguous().clone()
    metadata = {
        "learning_rate": repr(LEARNING_RATE),
        "weight_decay": repr(WEIGHT_DECAY),
        "warmup_steps": str(WARMUP_STEPS),
        "total_steps": str(STEPS),
        "max_grad_norm": repr(MAX_GRAD_NORM),
        "adam_beta1": repr(BETAS[0]),
        "adam_beta2": repr(BETAS[1]),
        "adam_epsilon": repr(EPSILON),
        "seed": str(INIT_SEED),
        "noise_dominated": NOISE_DOMINATED,
    }
    save_sorted(tensors, tiny / "goldens.safetensors", metadata)
    return losses, lrs, grad_norms


def save_sorted(tensors, path, metadata):
    """safetensors.torch.save with __metadata__ in sorted key order: the library writes it from a hash map
    whose order changes from call to call, and the fixture must be byte-reproducible."""
    data = safetensors.torch.save(tensors, metadata=metadata)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    assert len(text) <= n, f"{path}: reordered header grew from {n} to {len(text)} bytes"
    path.write_bytes(data[:8] + text + b" " * (n - len(text)) + data[8 + n :])
    assert safetensors.torch.load_file(str(path)).keys() == tensors.keys(), f"{path}: does not read back"


def check_conditioning(goldens_path):
    """Replays the fine-tune in float64: the float32 goldens must agree except the noise-dominated biases."""
    golden = safetensors.torch.load_file(str(goldens_path))
    model = build_model(make_config()).double()
    losses, _, grad_norms = train(model, make_batches())
    for key, values in (("loss", losses), ("grad_norm", grad_norms)):
        for s, (want, got) in enumerate(zip(values, golden[key].tolist())):
            assert abs(want - got) <= CONDITIONING_TOLERANCE * abs(want), f"{key}[{s}]: f64 {want} f32 {got}"
    moved = sum(expected_lr(s) for s in range(STEPS)) * 1.5
    for name, p in model.named_parameters():
        diff = (p.detach() - golden["final." + name].double()).abs().max().item()
        if NOISE_DOMINATED in name:
            start = build_model(make_config()).get_parameter(name).double()
            assert (golden["final." + name].double() - start).abs().max().item() <= moved, name
        else:
            assert diff <= CONDITIONING_TOLERANCE, f"final.{name}: float32 and float64 runs differ by {diff}"


def same_bytes(a, b):
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b, f"the two runs wrote different files: {files_a} vs {files_b}"
    for rel in files_a:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), f"{rel}: the two runs wrote different bytes"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", required=True, type=Path, help="bert-base-uncased vocab.txt")
    default_out = Path(__file__).resolve().parent.parent / "tests/data/training"
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

    # Two complete runs under a temporary directory; the first is moved into place if both agree bytewise.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".training_goldens_", dir=args.out.parent))
    try:
        first, second = staging / "first", staging / "second"
        losses, lrs, grad_norms = dump(vocab_lines, first)
        dump(vocab_lines, second)
        same_bytes(first, second)
        check_conditioning(first / "tiny" / "goldens.safetensors")
        size = sum(p.stat().st_size for p in (first / "tiny").rglob("*") if p.is_file())
        assert size < 500_000, f"fixture is {size} bytes, over the 500 KB budget"
        meta = {
            "script": "tools/dump_hf_training_goldens.py",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "device": "cpu",
            "matmul_precision": torch.get_float32_matmul_precision(),
            "attn_implementation": "eager",
            "optimizer": "torch.optim.AdamW(foreach=False), HF Trainer parameter groups",
            "scheduler": "transformers.get_linear_schedule_with_warmup",
        }
        (first / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for path in [first, *first.rglob("*")]:  # mkdtemp and save_file create private modes
            path.chmod(0o755 if path.is_dir() else 0o644)
        if args.out.exists():
            shutil.rmtree(args.out)
        first.rename(args.out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    fmt = lambda values: ", ".join(f"{v:.6g}" for v in values)
    print(f"loss      {fmt(losses)}")
    print(f"lr        {fmt(lrs)}")
    print(f"grad_norm {fmt(grad_norms)}")
    print(f"wrote {args.out} ({size} bytes in tiny/)")


if __name__ == "__main__":
    sys.exit(main())
