#!/usr/bin/env bash
# Fills carry/ (git-ignored) with what tools/device_check.sh needs on the GPU machine and cannot find there:
# GoogleTest, utf8proc and libzip (headers + static archives, from this machine's Debian packages), the shared
# bert-base-uncased tokenizer files and SST-2, and an fp16 copy of all-MiniLM-L6-v2 (fits the transfer limit).
# Usage: tools/make_device_carry.sh [--without-train] [SHARED_DIR]   (default ../shared)
# The device tool carries the tracked files and carry/ together, at most 64 MiB: --without-train leaves SST-2's
# train.tsv (3.7 MB) out, for device calls that run no fine-tune (the inference benchmarks and the cuda tests);
# the script prints the total it adds up to.
set -euo pipefail
cd "$(dirname "$0")/.."
without_train=0
if [ "${1:-}" = "--without-train" ]; then
  without_train=1
  shift
fi
shared=${1:-../shared}
carry=carry
mkdir -p $carry/deps/include $carry/deps/lib $carry/shared/models $carry/shared/data
cp -r /usr/include/gtest /usr/include/gmock /usr/include/utf8proc.h $carry/deps/include/
cp /usr/lib/x86_64-linux-gnu/libgtest*.a /usr/lib/x86_64-linux-gnu/libgmock*.a $carry/deps/lib/
cp /usr/lib/x86_64-linux-gnu/libutf8proc.a $carry/deps/lib/
cp /usr/include/zip.h /usr/include/zipconf.h $carry/deps/include/  # libzip: absent there
cp -P /usr/lib/x86_64-linux-gnu/libzip.so /usr/lib/x86_64-linux-gnu/libzip.so.4* $carry/deps/lib/
rm -rf $carry/deps/lib/cmake  # FindGTest finds include/ and lib/ under GTEST_ROOT (no config with absolute paths)
cp -r "$shared/models/bert-base-uncased" $carry/shared/models/
cp -r "$shared/data/sst2" $carry/shared/data/
if [ ! -f $carry/minilm-f16/model.safetensors ]; then
  tools/fetch_minilm.sh
  python3 -c 'import numpy' 2>/dev/null || python3 -m pip install -q numpy  # for the dtype conversion
  python3 tools/convert_safetensors_dtype.py --dtype F16 .cache/minilm $carry/minilm-f16
fi
[ $without_train = 1 ] && rm -f $carry/shared/data/sst2/train.tsv
tracked=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print s}')
carried=$(du -sb $carry | cut -f1)
total=$((tracked + carried))
echo "carry/ $((carried / 1048576)) MiB + tracked files $((tracked / 1048576)) MiB = $((total / 1048576)) MiB of the device tool's 64"
if [ $total -gt $((63 * 1048576)) ]; then
  echo "make_device_carry: near or over the 64 MiB the device tool carries; --without-train leaves train.tsv out" >&2
fi
