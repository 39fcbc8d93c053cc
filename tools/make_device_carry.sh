#!/usr/bin/env bash
# Fills carry/ (git-ignored) with what tools/device_check.sh needs on the GPU machine and cannot find there:
# GoogleTest, utf8proc and libzip (headers + static archives, from this machine's Debian packages), the shared
# bert-base-uncased tokenizer files and SST-2, and an fp16 copy of all-MiniLM-L6-v2 (fits the transfer limit).
# Usage: tools/make_device_carry.sh [SHARED_DIR]   (default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
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
du -sh $carry
