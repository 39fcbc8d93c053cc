#!/usr/bin/env bash
# Runs on the GPU machine (device tool), from the repository root, with carry/ carried (make it with
# tools/make_device_carry.sh). Builds nlpf with CUDA, runs the whole test suite (cpu + cuda labels), makes the
# Hugging Face reference fixtures, checks that transformers loads what nlpf writes, and runs the benchmarks
# side by side with PyTorch/HF. Logs and results go to $OUT (results.tgz holds the fixtures and JSON).
# Usage: tools/device_check.sh [all|build|test|sanitize|goldens|roundtrip|finetune|bench|bench_cpu|bench_gpu|measure]...
#        (default: all; bench_gpu is not in all: about 10 minutes per model, run it on its own)
# sanitize: the cuda-labelled tests under compute-sanitizer memcheck and racecheck
# phase2_gpu: nlpf phase2 precision on the GPU from all-MiniLM-L6-v2 (its head from seed 42), the product path
# bench_gpu: GPU inference, nlpf (bench/gpu_inference_bench) and PyTorch eager + torch.compile
#            (bench/peer/peer_gpu_inference.py) side by side; BENCH_GPU_MODELS, BENCH_GPU_PRECISIONS,
#            BENCH_GPU_BATCHES, BENCH_GPU_TRIALS, BENCH_GPU_SECONDS, BENCH_GPU_ENGINES narrow it
# measure: GPU measurement validation (bench/gpu_measure_validation.cu: counter vs trace, protocol CV, sampler cost)
# goldens: tokenizer ids (tools/dump_tokenizer_goldens.py) and BERT logits/loss/gradients (tools/dump_hf_model_goldens.py)
set -uo pipefail
root=$(pwd)
out=${OUT:-$root/device-out}
mkdir -p "$out"
res="$out/results"  # everything but summary.txt and env.txt ends up in results.tgz (8 files come back at most)
mkdir -p "$res/logs"
carry="$root/carry"
steps=${*:-all}
want() { [[ " $steps " == *" all "* && $1 != bench_gpu && $1 != phase2_gpu || " $steps " == *" $1 "* ]]; }
status=0
note() { echo "== $*" | tee -a "$out/summary.txt"; }
run_step() {  # run_step NAME command...: logs to results/logs/NAME.log, records pass/fail in summary
  local name=$1
  shift
  local t0=$SECONDS
  if "$@" >"$res/logs/$name.log" 2>&1; then
    note "$name: ok ($((SECONDS - t0)) s)"
  else
    note "$name: FAILED ($((SECONDS - t0)) s), see logs/$name.log"
    tail -n 30 "$res/logs/$name.log"
    status=1
  fi
}

build() {
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DNLPF_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DCMAKE_PREFIX_PATH="$carry/deps" -DGTEST_ROOT="$carry/deps" -DNLPF_SHARED_DIR="$carry/shared" &&
    cmake --build build-gpu -j "$(nproc)"
}

env_report() {
  date -u
  git log -1 --format='commit %H %s' 2>/dev/null || true
  nvidia-smi --query-gpu=name,pci.bus_id,driver_version,power.limit,persistence_mode,clocks.sm,temperature.gpu \
    --format=csv
  nvcc --version | tail -n 2
  python3 -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers",
transformers.__version__, "tokenizers", tokenizers.__version__)'
  lscpu | grep -E 'Model name|^CPU\(s\)'
}

note "device_check $(date -u +%FT%TZ) steps: $steps"
env_report >"$out/env.txt" 2>&1
export NLPF_MINILM_DIR="$carry/minilm-f16"

if want build || want test || want sanitize || want roundtrip || want finetune || want bench || want bench_cpu ||
  want bench_gpu || want phase2_gpu || want measure; then
  run_step build build
fi
if want test; then
  run_step ctest bash -c "cd build-gpu && ctest --output-on-failure -j 8 --timeout 600 -LE slow"  # slow: CPU-only, CI runs it
  grep -E 'tests passed|tests failed' "$res/logs/ctest.log" | tee -a "$out/summary.txt"
fi
if want sanitize; then
  # Every cuda-labelled test binary under memcheck and racecheck; a report of errors fails the step.
  for t in $(cd build-gpu/tests && ls *cuda*_test 2>/dev/null); do
    for tool in memcheck racecheck; do
      # The SST-2 pass (872 sentences x 4 precisions) runs the same kernels as the other tests, 100x slower here;
      # the out-of-memory test makes a CUDA call fail on purpose, which memcheck reports as an API error.
      run_step "sanitize_${tool}_$t" env GTEST_FILTER='-*Sst2Dev*:*OutOfMemory*' compute-sanitizer --tool $tool --error-exitcode 1 \
        "build-gpu/tests/$t"
      grep -h -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$res/logs/sanitize_${tool}_$t.log" | sed "s/^/$t $tool: /" |
        tee -a "$out/summary.txt"
    done
  done
fi
if want goldens; then
  run_step goldens_tokenizer python3 tools/dump_tokenizer_goldens.py \
    --vocab-dir "$carry/shared/models/bert-base-uncased" --dev-tsv "$carry/shared/data/sst2/dev.tsv" \
    --hard-cases tests/data/tokenizer/hard_cases.jsonl --out-dir "$res/tokenizer"
fi
if want goldens; then
  run_step goldens_model python3 tools/dump_hf_model_goldens.py \
    --vocab "$carry/shared/models/bert-base-uncased/vocab.txt" --out "$res/model"
  run_step goldens_training python3 tools/dump_hf_training_goldens.py \
    --vocab "$carry/shared/models/bert-base-uncased/vocab.txt" --out "$res/training"
fi
if want roundtrip; then
  rm -rf "$res/roundtrip" && mkdir -p "$res/roundtrip"
  run_step roundtrip_write bash -c "build-gpu/nlpf inspect --model '$carry/minilm-f16' --save-as '$res/roundtrip/minilm' &&
    build-gpu/nlpf inspect --model tests/data/checkpoint/tiny --save-as '$res/roundtrip/tiny'"
  run_step roundtrip_hf_minilm python3 tools/check_hf_roundtrip.py --ours "$res/roundtrip/minilm" --source "$carry/minilm-f16"
  run_step roundtrip_hf_tiny python3 tools/check_hf_roundtrip.py --ours "$res/roundtrip/tiny" --source tests/data/checkpoint/tiny \
    --expect-ids none
  rm -rf "$res/roundtrip/minilm"  # 45 MB; the check's verdict is in the log
  # phase1's best_model/ (a short real fine-tune of MiniLM on the CPU) gives HF's logits.
  run_step phase1_short build-gpu/nlpf phase1 --model "$carry/minilm-f16" --data-dir "$carry/shared/data/sst2" \
    --device cpu --max-train-examples 256 --max-eval-examples 64 --epochs 1 --trials 1 --min-trial-seconds 0.2 \
    --idle-seconds 0.2 --runs-dir "$res/phase1_short"
  best=$(ls -d "$res"/phase1_short/*/best_model 2>/dev/null | head -n 1)
  run_step roundtrip_logits bash -c "build-gpu/print_logits '$best' '$carry/shared/data/sst2/dev.tsv' 64 > '$res/logits_ours.jsonl' &&
    python3 tools/check_hf_logits.py --model '$best' --ours '$res/logits_ours.jsonl' --data '$carry/shared/data/sst2/dev.tsv'"
  rm -rf "$res"/phase1_short/*/best_model
  grep -h -E '^(PASS|FAIL)' "$res"/logs/roundtrip_hf_*.log "$res"/logs/roundtrip_logits.log | tee -a "$out/summary.txt"
fi
if want finetune; then
  # Evidence 7b: the Hugging Face side of the 4,000-sentence MiniLM fine-tune, in nlpf's example order.
  run_step finetune_hf bash -c "build-gpu/print_train_order 4000 42 1 > '$res/train_order.txt' &&
    python3 tools/hf_finetune_reference.py --model '$carry/minilm-f16' --data-dir '$carry/shared/data/sst2' \
      --max-train-examples 4000 --epochs 1 --seed 42 --device cuda --order-file '$res/train_order.txt' \
      --log-file '$res/finetune_hf_train_log.csv' > '$res/finetune_hf.json'"
  cat "$res/finetune_hf.json" | tee -a "$out/summary.txt"
fi
if want bench; then
  run_step bench_tokenizer_ours build-gpu/bench/tokenizer_bench --train-tsv "$carry/shared/data/sst2/train.tsv" \
    --vocab-dir "$carry/shared/models/bert-base-uncased" --benchmark_format=json --benchmark_out="$res/tokenizer_bench_ours.json"
  run_step bench_tokenizer_peer bash -c "python3 bench/peer_tokenizer.py --vocab-dir '$carry/shared/models/bert-base-uncased' \
    --train-tsv '$carry/shared/data/sst2/train.tsv' > '$res/tokenizer_bench_peer.json'"
  python3 bench/report_tokenizer.py "$res/tokenizer_bench_ours.json" "$res/tokenizer_bench_peer.json" | tee -a "$out/summary.txt"
fi
if want bench_cpu; then
  # CPU engine vs PyTorch on the same 16 cores, same thread count (issue item 8).
  threads=$(nproc)
  run_step bench_cpu_ours env OMP_NUM_THREADS=$threads build-gpu/bench/cpu_engine_bench \
    --config-dir "$carry/shared/models/bert-base-uncased" --minilm-dir "$carry/minilm-f16" \
    --benchmark_repetitions=5 --benchmark_format=json --benchmark_out="$res/cpu_engine_ours.json"
  run_step bench_cpu_peer env OMP_NUM_THREADS=$threads python3 bench/peer_cpu_engine.py \
    --config-dir "$carry/shared/models/bert-base-uncased" --minilm-dir "$carry/minilm-f16" --threads $threads \
    --out "$res/cpu_engine_peer.json"
  python3 bench/report_cpu_engine.py "$res/cpu_engine_ours.json" "$res/cpu_engine_peer.json" | tee -a "$out/summary.txt"
fi
if want phase2_gpu; then
  rm -rf "$res/phase2_gpu"
  run_step phase2_gpu build-gpu/nlpf phase2 precision --baseline-model-directory "$carry/minilm-f16" \
    --data-dir "$carry/shared/data/sst2" --device cuda --precisions fp32 tf32 bf16 fp16 fp8 --skip-failed-precisions \
    --eval-batch-size 64 --trials 3 --min-trial-seconds 2 --idle-seconds 1 --warmup-seconds 3 --quiet \
    --runs-dir "$res/phase2_gpu"
  for f in "$res"/phase2_gpu/*/pareto.csv; do [ -f "$f" ] && cat "$f" | tee -a "$out/summary.txt"; done
fi
if want bench_gpu; then
  models=${BENCH_GPU_MODELS:-bert_base minilm}
  precisions=${BENCH_GPU_PRECISIONS:-fp32 tf32 bf16 fp16}
  batches=${BENCH_GPU_BATCHES:-32 64 256}
  trials=${BENCH_GPU_TRIALS:-3}
  seconds=${BENCH_GPU_SECONDS:-2}
  engines=${BENCH_GPU_ENGINES:-eager compile}
  common=(--dev-tsv "$carry/shared/data/sst2/dev.tsv" --vocab-dir "$carry/shared/models/bert-base-uncased"
    --config-dir "$carry/shared/models/bert-base-uncased" --minilm-dir "$carry/minilm-f16" --models $models
    --precisions $precisions --batch-sizes $batches --paddings max_length longest --trials "$trials"
    --min-trial-seconds "$seconds" --idle-seconds 1 --warmup-seconds 1)
  run_step bench_gpu_ours build-gpu/bench/gpu_inference_bench "${common[@]}" --out "$res/gpu_inference_ours.json"
  run_step bench_gpu_peer env PYTHONUNBUFFERED=1 python3 bench/peer/peer_gpu_inference.py "${common[@]}" \
    --engines $engines --compile-modes reduce-overhead --compile-shapes dynamic --gpu-warmup-seconds 0 \
    --deadline-seconds "${BENCH_GPU_PEER_DEADLINE:-330}" --out "$res/gpu_inference_peer.json"
  python3 bench/report_gpu_inference.py "$res/gpu_inference_ours.json" "$res/gpu_inference_peer.json" \
    --markdown-out "$out/gpu_inference_report.md" | tee -a "$out/summary.txt"
  cp "$res/gpu_inference_ours.json" "$res/gpu_inference_peer.json" "$out/" 2>/dev/null || true
fi
if want measure; then
  # Issue 4 item 8: about 4 minutes of GPU load; exit 0 only when checks a, b and c all pass.
  run_step measure build-gpu/bench/gpu_measure_validation --out "$res/measure_validation.json"
  grep -h -E '^(GPU |memory:|check |RESULT)' "$res/logs/measure.log" | tee -a "$out/summary.txt"
  cp "$res/measure_validation.json" "$out/" 2>/dev/null || true  # small; also readable without results.tgz
fi
tar -C "$out" -czf "$out/results.tgz" results && rm -rf "$res"
note "device_check done, status $status"
cat "$out/summary.txt"
exit $status
