#!/usr/bin/env bash
# The job `make run` runs: `nlpf demo`, the whole pipeline offline on the CPU in a few minutes — a
# synthetic sentiment task, a tiny BERT trained from random initialisation (Phase 1), the three Phase 2
# sweeps and one merged frontier, with every file of a real run under runs/<timestamp>_demo/.
# Usage: tools/run_main_job.sh PATH_TO_NLPF [RUNS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
nlpf=${1:-build/nlpf}
runs=${2:-runs}
exec "$nlpf" demo --runs-dir "$runs"
