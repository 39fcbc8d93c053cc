#!/usr/bin/env bash
# The job `make run` runs until `nlpf demo` exists: Phase 1 end to end, offline, in seconds — a tiny BERT
# (examples/tiny-bert, made by tools/make_example_model.py) trained from random initialisation on the 20
# committed sample sentences and evaluated on the same sentences (a smoke run of the whole pipeline, not
# a benchmark), with the measurement protocol shortened. Usage: tools/run_main_job.sh PATH_TO_NLPF [RUNS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
nlpf=${1:-build/nlpf}
runs=${2:-runs}
exec "$nlpf" phase1 --model examples/tiny-bert --init random --device cpu \
  --train-file tests/data/text/sample.tsv --eval-file tests/data/text/sample.tsv \
  --max-sequence-length 32 --batch-size 4 --epochs 10 --learning-rate 3e-3 --warmup-ratio 0.1 \
  --trials 3 --min-trial-seconds 0.2 --idle-seconds 0.2 --runs-dir "$runs"
