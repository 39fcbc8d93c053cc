#!/usr/bin/env bash
# The job `make run` runs: until `nlpf demo` exists, `nlpf inspect` on the committed tiny checkpoint and
# sample data (offline, seconds). Usage: tools/run_main_job.sh PATH_TO_NLPF
set -euo pipefail
cd "$(dirname "$0")/.."
nlpf=${1:-build/nlpf}
exec "$nlpf" inspect --model tests/data/checkpoint/tiny --train-file tests/data/text/sample.tsv \
  --eval-file tests/data/text/sample.tsv
