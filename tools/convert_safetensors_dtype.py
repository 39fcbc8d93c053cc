#!/usr/bin/env python3
"""Copies a Hugging Face model folder, converting its float tensors to another dtype (F16 or BF16 or F32).

Standard library + numpy only (no torch), so it runs on the development machine. Used to make an fp16
copy of all-MiniLM-L6-v2 that fits the GPU machine's 64 MiB transfer limit.
Usage: convert_safetensors_dtype.py --dtype F16 SRC_DIR DST_DIR
"""
import argparse
import json
import shutil
import struct
from pathlib import Path

import numpy as np

NP = {"F32": np.float32, "F16": np.float16}


def to_bf16_bits(a32):
    u = a32.astype(np.float32).view(np.uint32)
    rounded = u + 0x7FFF + ((u >> 16) & 1)  # round to nearest even
    return (rounded >> 16).astype(np.uint16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dtype", choices=["F32", "F16", "BF16"], required=True)
    ap.add_argument("src")
    ap.add_argument("dst")
    args = ap.parse_args()
    src, dst = Path(args.src), Path(args.dst)
    raw = (src / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out_header, chunks, offset = {}, [], 0
    for name, info in sorted((k, v) for k, v in header.items() if k != "__metadata__"):
        b, e = info["data_offsets"]
        if info["dtype"] != "F32":  # integer buffers (position_ids) are copied unchanged
            blob = data[b:e]
            out_header[name] = {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [offset, offset + len(blob)]}
            chunks.append(blob)
            offset += len(blob)
            continue
        a = np.frombuffer(data[b:e], dtype=np.float32)
        if args.dtype == "BF16":
            blob = to_bf16_bits(a).tobytes()
        else:
            blob = a.astype(NP[args.dtype]).tobytes()
        out_header[name] = {"dtype": args.dtype, "shape": info["shape"], "data_offsets": [offset, offset + len(blob)]}
        chunks.append(blob)
        offset += len(blob)
    out_header["__metadata__"] = {"format": "pt"}
    hjson = json.dumps(out_header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    dst.mkdir(parents=True, exist_ok=True)
    with open(dst / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for c in chunks:
            f.write(c)
    for extra in ("config.json", "vocab.txt", "tokenizer_config.json"):
        if (src / extra).exists():
            shutil.copy(src / extra, dst / extra)
    print(f"wrote {dst} ({offset} bytes of {args.dtype} tensors)")


if __name__ == "__main__":
    main()
