#!/usr/bin/env python3
"""The Hugging Face side of a side-by-side fine-tune (issue evidence 7b): a BERT-family checkpoint fine-tuned
on GLUE SST-2 with the reference recipe in a plain PyTorch loop, written out step by step so every choice is
in view. Same recipe as nlpf phase1 (DESIGN §5) and the HF Trainer:
  - AutoModelForSequenceClassification.from_pretrained(model, num_labels=2) in float32 after
    torch.manual_seed(seed) (the new classifier is initialised by HF from that seed); dropout as in
    config.json (0.1), active in training;
  - torch.optim.AdamW(betas 0.9/0.999, eps 1e-8) in the Trainer's two groups (decay for every parameter
    except biases and LayerNorm), linear warmup over ceil(warmup_ratio * total steps) then linear decay to
    0 (transformers.get_linear_schedule_with_warmup), clip_grad_norm_(1.0) before every update;
  - batches in a given order (--order-file, e.g. the order nlpf used) or torch's seeded shuffle per epoch
    (written with --write-order), each padded to its longest example (padding is masked, so this equals
    max-length padding up to summation order), truncated at --max-length tokens;
  - fp32 throughout: TF32 off, "highest" matmul precision;
  - evaluation on every dev sentence after each epoch; dev_accuracy is the best epoch's (best checkpoint).
Prints one JSON object (dev_accuracy, train_seconds, steps, final_loss, versions, ...); --log-file writes
step,epoch,learning_rate,loss,grad_norm per update.

Usage: tools/hf_finetune_reference.py --model DIR --data-dir DIR [--max-train-examples 4000] [--epochs 1]
           [--batch-size 32] [--learning-rate 3e-5] [--weight-decay 0.01] [--warmup-ratio 0.06]
           [--seed 42] [--max-length 128] [--device cuda|cpu] [--order-file F | --write-order F]
           [--log-file train_log.csv] [--eval-batch-size 64]
"""

import argparse
import csv
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForSequenceClassification, BertTokenizer, get_linear_schedule_with_warmup


def read_glue_tsv(path, limit=None):
    """(sentences, labels) of a GLUE SST-2 file: header "sentence<TAB>label", one example a line."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    header = lines[0].rstrip("\r").split("\t")
    if "sentence" not in header or "label" not in header:
        raise SystemExit(f"{path}:1: expected a header with 'sentence' and 'label', got {header}")
    s_col, l_col = header.index("sentence"), header.index("label")
    sentences, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(header) or fields[l_col] not in ("0", "1"):
            raise SystemExit(f"{path}:{number}: expected {len(header)} fields and a 0/1 label")
        sentences.append(fields[s_col])
        labels.append(int(fields[l_col]))
        if limit is not None and len(sentences) == limit:
            break
    return sentences, labels


def read_order(path, n, epochs):
    """epochs * n indices, one a line; each epoch's block must be a permutation of 0..n-1."""
    values = [int(v) for v in Path(path).read_text(encoding="utf-8").split()]
    if len(values) not in (n, n * epochs):
        expected = f"{n}" if epochs == 1 else f"{n} (one epoch, reused) or {n * epochs} ({epochs} epochs)"
        raise SystemExit(f"{path}: {len(values)} indices, expected {expected}")
    if len(values) == n:
        values = values * epochs
    blocks = [values[e * n : (e + 1) * n] for e in range(epochs)]
    for e, block in enumerate(blocks):
        if sorted(block) != list(range(n)):
            raise SystemExit(f"{path}: epoch {e + 1}'s block is not a permutation of 0..{n - 1}")
    return blocks


def decay_parameter_names(model):
    """The names the HF Trainer gives weight decay (Trainer.create_optimizer's first group)."""
    get_names = getattr(transformers.Trainer, "get_decay_parameter_names", None)
    if get_names is not None:
        return set(get_names(None, model))  # uses no state of the Trainer
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS
    from transformers.trainer_pt_utils import get_parameter_names
    return {n for n in get_parameter_names(model, ALL_LAYERNORM_LAYERS) if "bias" not in n}


def encode(tokenizer, sentences, max_length, device):
    batch = tokenizer(sentences, padding="longest", truncation=True, max_length=max_length,
                      return_tensors="pt")
    return {k: v.to(device) for k, v in batch.items()}


def evaluate(model, tokenizer, sentences, labels, args, device):
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(sentences), args.eval_batch_size):
            chunk = sentences[start : start + args.eval_batch_size]
            batch = encode(tokenizer, chunk, args.max_length, device)
            predictions = model(**batch).logits.argmax(dim=-1).cpu().tolist()
            correct += sum(int(p == y) for p, y in zip(predictions, labels[start : start + len(predictions)]))
    model.train()
    return correct / len(sentences)


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="Hugging Face checkpoint directory")
    parser.add_argument("--data-dir", required=True, type=Path, help="GLUE SST-2: train.tsv and dev.tsv")
    parser.add_argument("--max-train-examples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.06)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--device", choices=("cuda", "cpu"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--order-file", type=Path, help="training example indices, one a line, per epoch")
    parser.add_argument("--write-order", type=Path, help="write the order used here (one index a line)")
    parser.add_argument("--log-file", type=Path, help="CSV: step,epoch,learning_rate,loss,grad_norm")
    args = parser.parse_args()
    for name in ("max_train_examples", "epochs", "batch_size", "eval_batch_size", "max_length"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")

    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)

    tokenizer = BertTokenizer.from_pretrained(str(args.model))
    hello = tokenizer("hello world")["input_ids"]
    assert hello == [101, 7592, 2088, 102], f"{args.model}: 'hello world' tokenizes to {hello}"
    train_sentences, train_labels = read_glue_tsv(args.data_dir / "train.tsv", args.max_train_examples)
    dev_sentences, dev_labels = read_glue_tsv(args.data_dir / "dev.tsv")
    n = len(train_sentences)

    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(str(args.model), num_labels=2,
                                                               dtype=torch.float32)
    model.to(device).train()
    params = dict(model.named_parameters())
    decay = decay_parameter_names(model)
    groups = [
        {"params": [p for k, p in params.items() if k in decay], "weight_decay": args.weight_decay},
        {"params": [p for k, p in params.items() if k not in decay], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    steps_per_epoch = math.ceil(n / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = math.ceil(total_steps * args.warmup_ratio)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)

    if args.order_file:
        orders = read_order(args.order_file, n, args.epochs)
    else:
        generator = torch.Generator().manual_seed(args.seed)
        orders = [torch.randperm(n, generator=generator).tolist() for _ in range(args.epochs)]
    if args.write_order:
        args.write_order.write_text("".join(f"{i}\n" for order in orders for i in order), encoding="utf-8")

    log_rows, epoch_accuracies = [], []
    step, loss_value, train_seconds = 0, float("nan"), 0.0
    for epoch in range(1, args.epochs + 1):
        synchronize(device)
        started = time.perf_counter()
        for start in range(0, n, args.batch_size):
            index = orders[epoch - 1][start : start + args.batch_size]
            batch = encode(tokenizer, [train_sentences[i] for i in index], args.max_length, device)
            labels = torch.tensor([train_labels[i] for i in index], device=device)
            loss = model(**batch, labels=labels).loss
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            learning_rate = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if args.log_file or start + args.batch_size >= n:
                loss_value = loss.item()
                log_rows.append((step, epoch, learning_rate, loss_value, grad_norm.item()))
        synchronize(device)
        train_seconds += time.perf_counter() - started
        epoch_accuracies.append(evaluate(model, tokenizer, dev_sentences, dev_labels, args, device))
        print(f"epoch {epoch}: dev accuracy {epoch_accuracies[-1]:.4f}", file=sys.stderr)

    if args.log_file:
        with open(args.log_file, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", "epoch", "learning_rate", "loss", "grad_norm"])
            writer.writerows(log_rows)
    result = {
        "dev_accuracy": max(epoch_accuracies),
        "epoch_dev_accuracies": epoch_accuracies,
        "dev_examples": len(dev_sentences),
        "train_examples": n,
        "train_seconds": train_seconds,
        "steps": step,
        "warmup_steps": warmup_steps,
        "final_loss": loss_value,
        "order": str(args.order_file) if args.order_file else f"torch.randperm seeded {args.seed}",
        "recipe": {k: getattr(args, k) for k in ("epochs", "batch_size", "learning_rate", "weight_decay",
                                                 "warmup_ratio", "max_grad_norm", "seed", "max_length")},
        "attn_implementation": model.config._attn_implementation,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
