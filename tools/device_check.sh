#!/usr/bin/env bash
# Runs on the GPU machine (device tool), from the repository root, with carry/ carried (make it with
# tools/make_device_carry.sh). Builds nlpf with CUDA, runs the whole test suite (cpu + cuda labels), makes the
# Hugging Face reference fixtures, checks that transformers loads what nlpf writes, and runs the benchmarks
# side by side with PyTorch/HF. Logs and results go to $OUT (results.tgz holds the fixtures and JSON).
# Usage: tools/device_check.sh [all|build|test|sanitize|goldens|roundtrip|finetune|bench|bench_cpu|bench_gpu|measure|finetune_gpu|study_gpu|bench_train|profile_train|fp8_gpu|fp8_channel|fp8_small_batches|tf32_ab|tf32_profile|gemm_probe|first_token|f32_residual|length_multiple|autotune_rounds]...
#        (default: all; bench_gpu is not in all: about 10 minutes per model, run it on its own; nor are finetune_gpu
#        and bench_train)
# sanitize: the cuda-labelled tests under compute-sanitizer memcheck and racecheck
# fp8_gpu: issue 13 item 5 in one step: all-MiniLM-L6-v2 fine-tuned on the GPU (phase1, fp32), its fp8 SST-2 test,
#          phase2 grid fp32/bf16/fp16/fp8 x batch 64/256 padded to 128 from it, and bert_base bf16 vs fp8 at batch
#          32/64/256 (bench/gpu_inference_bench) with PyTorch eager's 16-bit beside it; small files in results/fp8_gpu/
# fp8_channel: fp8 with per-output-channel weight scales (--fp8-weight-scales channel): its cuda tests, then, after
#              fp8_gpu in the same run (its fine-tuned MiniLM), phase2 precision fp8 per tensor and per channel from
#              that model, and bert_base fp8 per tensor and per channel at batch 64/256 padded to 128
# fp8_small_batches: issue 13 item 5's "where fp8 starts to pay": nlpf bf16 and fp8 (per tensor) at batch 1, 8,
#                    16 and 32, bert_base and all-MiniLM-L6-v2 padded to 128 (bench/gpu_inference_bench; builds only
#                    its target); results/fp8_small_batches/
# phase2_gpu: nlpf phase2 precision on the GPU from all-MiniLM-L6-v2 (its head from seed 42), the product path
# study_gpu: the study on the GPU, as bench/RESULTS.md reports it: nlpf phase1 --device cuda (all-MiniLM-L6-v2, all
#            of SST-2, fp32), then from its best model phase2 max-sequence-length with --padding max-length
#            (STUDY_GPU_LENGTHS, default 128 96 64 48 40 32 24 16); small files in results/study_gpu/ (no weights).
#            STUDY_GPU_SWEEPS (default "lengths") adds issue 12 item 7's other sweeps from the same model: layers
#            (6..1), refit (layers with --refit-epochs 1), precision (fp32 tf32 bf16 fp16 fp8), grid (lengths 128 64
#            32 16 x layers 6 4 2 x fp32 bf16 fp16 fp8); STUDY_GPU_DEVICES (e.g. cuda:0,cuda:1) runs the grid's points
#            on several GPUs at once
# gemm_probe: bench/gemm_algo_probe, wider cuBLASLt candidate sets for bert-base's four linear GEMMs at tf32 (rows
#             4096/8192/32768) and fp32 (8192/32768) than the engine's autotune times; GEMM_PROBE_TF32_ROWS,
#             GEMM_PROBE_FP32_ROWS (empty skips the mode) and GEMM_PROBE_FORMS ("plain residual" also times the
#             768-wide GEMMs adding the residual, beta = 1) pick others; results/gemm_probe.txt
# tf32_ab: the tf32 engine's A/B switches, bert_base padded to 128 at batch 32/64/256 (bench/gpu_inference_bench
#          only; builds only its target): the attention on the CUDA cores (--tf32-attention cuda-cores) against
#          the tensor cores (the default), alternated A B A B (engine_ab, trials of >= 1.5 s), then 64 autotune
#          candidates instead of 8; results/tf32_ab/, the printed lines and the A/B table in the summary
# first_token: the first-token-only last layer (--last-layer first-token, the default) against every token's
#              (all-tokens), A B A B, bert_base at FIRST_TOKEN_PRECISIONS (default fp32 tf32), FIRST_TOKEN_PADDINGS
#              (max_length longest) and FIRST_TOKEN_BATCHES (32 64 256); builds only its target;
#              results/first_token/, the printed lines in the summary
# f32_residual: the attention-output and output GEMMs adding the residual as their C (--f32-residual epilogue)
#               against beta = 0 with the residual added in the LayerNorm (layer-norm, the default), A B A B, bert_base
#               at RESIDUAL_PRECISIONS (fp32 tf32), RESIDUAL_PADDINGS (max_length longest) and RESIDUAL_BATCHES
#               (32 64 256); builds only its target; results/f32_residual/, the printed lines in the summary
# length_multiple: padded to the longest, each batch's length rounded up to a multiple of 8 (the engine's) against
#                  the batch's longest example itself (1, as PyTorch pads), A B A B, bert_base at
#                  LENGTH_MULTIPLE_PRECISIONS (fp32 tf32) and LENGTH_MULTIPLE_BATCHES (32 64 256); results/length_multiple/
# autotune_rounds: the GEMM autotune timing its candidates in one round (the default) against three rounds
#                 (--autotune-rounds, each candidate's fastest counting), A B A B, bert_base at
#                 AUTOTUNE_ROUNDS_PRECISIONS (tf32 fp32), AUTOTUNE_ROUNDS_PADDINGS (max_length longest) and
#                 AUTOTUNE_ROUNDS_BATCHES (32 64 256); results/autotune_rounds/, with what each run's autotune chose
#                 (bench/report_autotune.py: choices.md)
# tf32_profile: ncu (--clock-control none) of bert_base inference at PROFILE_POINTS (precision:batch:padding, default
#               tf32:64:max_length), the engine's defaults (PROFILE_ARGS adds options), with the GEMM choices of an
#               unprofiled run of the same point, L2 not flushed between kernels (PROFILE_CACHE_CONTROL=all flushes
#               it); results/tf32_profile/ncu_<precision>_b<batch>_<padding>.csv.gz
#               (and _choices.json, the unprofiled run), and one forward's kernel time by kind in the summary
# bench_gpu: GPU inference, nlpf (bench/gpu_inference_bench) and PyTorch eager + torch.compile
#            (bench/peer/peer_gpu_inference.py) side by side; BENCH_GPU_MODELS, BENCH_GPU_PRECISIONS,
#            BENCH_GPU_BATCHES, BENCH_GPU_TRIALS, BENCH_GPU_SECONDS, BENCH_GPU_ENGINES narrow it;
#            BENCH_GPU_OURS_ARGS adds options to nlpf's side
# bench_train: one bert-base-shape training step (batch 32 x 128, random weights), nlpf (bench/gpu_training_bench,
#             fp32 and tf32) against PyTorch eager (bench/peer/peer_training_step.py: fp32, tf32, bf16 autocast);
#             builds only its target; BENCH_TRAIN_* narrow it (see the step)
# profile_train: ncu over the kernels of training steps (all-MiniLM-L6-v2 bf16 at SST-2's size, bert-base fp32 and
#                bf16 at 32 x 128), summarised by bench/report_kernel_profile.py (the profile bench/RESULTS.md quotes),
#                beside PyTorch's bert-base step under torch.profiler (peer_training_step.py --kernel-profile-steps)
# measure: GPU measurement validation (bench/gpu_measure_validation.cu: counter vs trace, protocol CV, sampler cost)
# finetune_gpu: GPU fine-tuning, nlpf phase1 --device cuda and the Hugging Face Trainer
#               (bench/peer/peer_finetune_trainer.py) on all-MiniLM-L6-v2 and SST-2 (issue 12 items 5-6); each run
#               under `timeout`, all of them within FINETUNE_DEADLINE_S of this script's start (see the step)
# goldens: tokenizer ids (tools/dump_tokenizer_goldens.py) and BERT logits/loss/gradients (tools/dump_hf_model_goldens.py)
set -uo pipefail
root=$(pwd)
out=${OUT:-$root/device-out}
mkdir -p "$out"
res="$out/results"  # everything but summary.txt and env.txt ends up in results.tgz (8 files come back at most)
mkdir -p "$res/logs"
carry="$root/carry"
steps=${*:-all}
# Steps that run only when named: "all" leaves them out.
named_only=" bench_gpu phase2_gpu finetune_gpu study_gpu bench_train profile_train fp8_gpu fp8_channel
  fp8_small_batches tf32_ab gemm_probe tf32_profile first_token f32_residual length_multiple autotune_rounds "
want() { [[ " $steps " == *" all "* && $named_only != *[[:space:]]$1[[:space:]]* || " $steps " == *" $1 "* ]]; }
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

configure() {
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DNLPF_WITH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DCMAKE_PREFIX_PATH="$carry/deps" -DGTEST_ROOT="$carry/deps" -DNLPF_SHARED_DIR="$carry/shared"
}
build() {
  configure && cmake --build build-gpu -j "$(nproc)"
}
build_target() {  # build_target TARGET: configure and build one target (a no-op after a full build)
  configure && cmake --build build-gpu -j "$(nproc)" --target "$1"
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
  want bench_gpu || want phase2_gpu || want measure || want finetune_gpu || want study_gpu || want fp8_gpu; then
  run_step build build
fi
if want test; then
  run_step ctest bash -c "cd build-gpu && ctest --output-on-failure -j 8 --timeout 600 -LE slow"  # slow: CPU-only, CI runs it
  grep -E 'tests passed|tests failed' "$res/logs/ctest.log" | tee -a "$out/summary.txt"
fi
# racecheck_outside_nvjet PROGRAM: racecheck with every kernel instrumented; fails when the program fails or a
# reported hazard has an access outside cuBLASLt's own kernels (nvjet_*), whose hazards it lists but passes.
racecheck_outside_nvjet() {
  local log
  log=$(mktemp)
  compute-sanitizer --tool racecheck "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]} ours
  ours=$(grep -E 'access at ' "$log" | grep -c -v -E 'access at nvjet_')
  rm -f "$log"
  echo "racecheck_outside_nvjet: program exit $rc, $ours hazard lines outside nvjet kernels"
  [ "$rc" -eq 0 ] && [ "$ours" -eq 0 ]
}
if want sanitize; then
  # Every cuda-labelled test binary under memcheck and racecheck (SANITIZE_TESTS, e.g. "bert_fused_cuda_test
  # gelu_cuda_test", narrows the list); a report of errors fails the step.
  for t in ${SANITIZE_TESTS:-$(cd build-gpu/tests && ls *cuda*_test 2>/dev/null)}; do
    for tool in memcheck racecheck; do
      # The SST-2 pass (872 sentences x 4 precisions) runs the same kernels as the other tests, 100x slower here;
      # the out-of-memory test makes a CUDA call fail on purpose, which memcheck reports as an API error.
      # racecheck leaves out cuBLASLt's own kernels (nvjet_*): it reported shared-memory hazards inside two of them on
      # 2026-11-29 (a split-K 16-bit kernel in bert_inference_cuda_test, the fp8 kernels in linear_fp8_cuda_test; the
      # library's TMA/mbarrier pipelines, whose results match the reference in the same tests). racecheck is for
      # nlpf's kernels; memcheck still checks every kernel, the library's included. Except the tests below: there the
      # exclusion itself makes the sanitizer fail ("failed to handle a hardware exception": bert_inference_fp8_cuda_test
      # twice on 2026-11-30; matmul_cuda_test and bert_training_cuda_test since their GEMMs take bf16 operands with an
      # f32 output, 2026-11-30; bert_fused_cuda_test at its first bf16 linear test and bert_inference_cuda_test in its first
      # test, 2026-11-30 20:08 and 20:20), so every kernel is instrumented and the step fails on a hazard in any
      # kernel but the library's (racecheck_outside_nvjet; bert_inference_cuda_test's four are all in cuBLASLt's
      # split-K 16-bit kernels nvjet_sm90_{tst,hsh}_64x8_64x16_2x4_h_bx_splitK_bias_TNT, as on 2026-11-29).
      sanitize=(compute-sanitizer --tool $tool --error-exitcode 1)
      case "$t" in
        bert_inference_fp8_cuda_test | matmul_cuda_test | bert_training_cuda_test | bert_fused_cuda_test | \
          bert_inference_cuda_test)
          [ $tool = racecheck ] && sanitize=(racecheck_outside_nvjet)
          ;;
        *) [ $tool = racecheck ] && sanitize+=(--kernel-name-exclude kns=nvjet) ;;
      esac
      GTEST_FILTER='-*Sst2Dev*:*OutOfMemory*' run_step "sanitize_${tool}_$t" "${sanitize[@]}" "build-gpu/tests/$t"
      grep -h -E 'ERROR SUMMARY|RACECHECK SUMMARY|racecheck_outside_nvjet' "$res/logs/sanitize_${tool}_$t.log" | sed "s/^/$t $tool: /" |
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
if want study_gpu; then
  st="$res/study_gpu"
  rm -rf "$st" && mkdir -p "$st"
  python3 -c 'import sys, torch; sys.path.insert(0, "bench/peer")
from peer_gpu_inference import gpu_warmup; gpu_warmup(torch, 25.0)' >"$res/logs/study_gpu_warmup.log" 2>&1
  run_step study_gpu_phase1 build-gpu/nlpf phase1 --device cuda --model "$carry/minilm-f16" \
    --data-dir "$carry/shared/data/sst2" --train-precision fp32 --trials 3 --min-trial-seconds 2 --quiet \
    --runs-dir "$st/runs"
  baseline=$(ls -d "$st"/runs/*_phase_1_baseline 2>/dev/null | head -1)
  if [ -n "$baseline" ]; then
    sweeps=" ${STUDY_GPU_SWEEPS:-lengths} "
    common=(--baseline-model-directory "$baseline/best_model" --data-dir "$carry/shared/data/sst2" --trials 3
      --min-trial-seconds 2 --quiet --runs-dir "$st/runs")
    # shellcheck disable=SC2086  # a list of lengths
    [[ $sweeps == *" lengths "* ]] && run_step study_gpu_lengths build-gpu/nlpf phase2 max-sequence-length \
      "${common[@]}" --sequence-lengths ${STUDY_GPU_LENGTHS:-128 96 64 48 40 32 24 16} --padding max-length \
      --device cuda
    [[ $sweeps == *" layers "* ]] && run_step study_gpu_layers build-gpu/nlpf phase2 layers "${common[@]}" \
      --num-layers 6 5 4 3 2 1 --device cuda
    [[ $sweeps == *" refit "* ]] && run_step study_gpu_refit build-gpu/nlpf phase2 layers "${common[@]}" \
      --num-layers 6 5 4 3 2 1 --refit-epochs 1 --device cuda
    [[ $sweeps == *" precision "* ]] && run_step study_gpu_precision build-gpu/nlpf phase2 precision "${common[@]}" \
      --precisions fp32 tf32 bf16 fp16 fp8 --skip-failed-precisions --device cuda
    if [[ $sweeps == *" grid "* ]]; then
      placement=(--device cuda)
      [ -n "${STUDY_GPU_DEVICES:-}" ] && placement=(--devices "$STUDY_GPU_DEVICES")
      run_step study_gpu_grid build-gpu/nlpf phase2 grid "${common[@]}" --sequence-lengths 128 64 32 16 \
        --num-layers 6 4 2 --precisions fp32 bf16 fp16 fp8 --skip-failed-precisions --paddings max-length \
        "${placement[@]}"
    fi
  fi
  find "$st/runs" \( -name '*.safetensors' -o -name 'model.safetensors.index.json' \) -delete
  for f in "$st"/runs/*/pareto.csv; do [ -f "$f" ] && cut -d, -f1-6 "$f" | tee -a "$out/summary.txt"; done
fi
if want fp8_gpu; then
  f8="$res/fp8_gpu"
  rm -rf "$f8" && mkdir -p "$f8"
  python3 -c 'import sys, torch; sys.path.insert(0, "bench/peer")
from peer_gpu_inference import gpu_warmup; gpu_warmup(torch, 20.0)' >"$res/logs/fp8_gpu_warmup.log" 2>&1
  run_step fp8_gpu_phase1 build-gpu/nlpf phase1 --device cuda --model "$carry/minilm-f16" \
    --data-dir "$carry/shared/data/sst2" --train-precision fp32 --trials 3 --min-trial-seconds 2 --quiet \
    --runs-dir "$f8/runs"
  best=$(ls -d "$f8"/runs/*_phase_1_baseline/best_model 2>/dev/null | head -1)
  if [ -n "$best" ]; then
    run_step fp8_gpu_sst2_test env NLPF_SST2_MODEL_DIR="$best" build-gpu/tests/bert_inference_fp8_cuda_test
    run_step fp8_gpu_grid build-gpu/nlpf phase2 grid --baseline-model-directory "$best" \
      --data-dir "$carry/shared/data/sst2" --precisions fp32 bf16 fp16 fp8 --batch-sizes 64 256 \
      --paddings max-length --skip-failed-precisions --trials 3 --min-trial-seconds 2 --idle-seconds 1 \
      --warmup-seconds 2 --device cuda --quiet --runs-dir "$f8/runs"
  fi
  f8_common=(--dev-tsv "$carry/shared/data/sst2/dev.tsv" --vocab-dir "$carry/shared/models/bert-base-uncased"
    --config-dir "$carry/shared/models/bert-base-uncased" --minilm-dir "$carry/minilm-f16" --models bert_base
    --paddings max_length --trials 3 --min-trial-seconds 2 --idle-seconds 1 --warmup-seconds 1)
  run_step fp8_gpu_bench build-gpu/bench/gpu_inference_bench "${f8_common[@]}" --precisions bf16 fp8 \
    --batch-sizes 32 64 256 --gpu-warmup-seconds 0 --out "$f8/bert_base_ours.json"
  run_step fp8_gpu_peer env PYTHONUNBUFFERED=1 python3 bench/peer/peer_gpu_inference.py "${f8_common[@]}" \
    --precisions bf16 fp16 --batch-sizes 32 64 256 --engines eager --gpu-warmup-seconds 0 \
    --out "$f8/bert_base_peer.json"
  find "$f8/runs" \( -name '*.safetensors' -o -name 'model.safetensors.index.json' \) -delete
  for f in "$f8"/runs/*grid/pareto.csv; do [ -f "$f" ] && cut -d, -f1-8 "$f" | tee -a "$out/summary.txt"; done
  python3 bench/report_gpu_inference.py "$f8/bert_base_ours.json" "$f8/bert_base_peer.json" | tee -a "$out/summary.txt"
fi
if want fp8_channel; then
  fc="$res/fp8_channel"
  rm -rf "$fc" && mkdir -p "$fc"
  run_step fp8_channel_op_tests build-gpu/tests/linear_fp8_cuda_test --gtest_filter='*PerChannel*'
  run_step fp8_channel_engine_tests build-gpu/tests/bert_inference_fp8_cuda_test --gtest_filter='*PerChannel*'
  best=$(ls -d "$res"/fp8_gpu/runs/*_phase_1_baseline/best_model 2>/dev/null | head -1)
  if [ -n "$best" ]; then
    for scales in tensor channel; do
      run_step "fp8_channel_precision_$scales" build-gpu/nlpf phase2 precision --baseline-model-directory "$best" \
        --data-dir "$carry/shared/data/sst2" --precisions fp8 --fp8-weight-scales "$scales" --trials 3 \
        --min-trial-seconds 2 --idle-seconds 1 --warmup-seconds 2 --device cuda --quiet --runs-dir "$fc/runs_$scales"
    done
  else
    note "fp8_channel: no fine-tuned model (run fp8_gpu first in the same invocation); phase2 points skipped"
  fi
  for scales in tensor channel; do
    run_step "fp8_channel_bench_$scales" build-gpu/bench/gpu_inference_bench --dev-tsv "$carry/shared/data/sst2/dev.tsv" \
      --vocab-dir "$carry/shared/models/bert-base-uncased" --config-dir "$carry/shared/models/bert-base-uncased" \
      --minilm-dir "$carry/minilm-f16" --models bert_base --paddings max_length --precisions fp8 --batch-sizes 64 256 \
      --trials 3 --min-trial-seconds 2 --idle-seconds 1 --warmup-seconds 1 --gpu-warmup-seconds 0 \
      --fp8-weight-scales "$scales" --out "$fc/bert_base_fp8_$scales.json"
  done
  find "$fc" \( -name '*.safetensors' -o -name 'model.safetensors.index.json' \) -delete
  for f in "$fc"/runs_*/*/pareto.csv; do [ -f "$f" ] && cut -d, -f1-6 "$f" | tee -a "$out/summary.txt"; done
fi
if want fp8_small_batches; then
  fs="$res/fp8_small_batches"
  mkdir -p "$fs"
  run_step fp8_small_batches_build build_target gpu_inference_bench
  run_step fp8_small_batches build-gpu/bench/gpu_inference_bench --dev-tsv "$carry/shared/data/sst2/dev.tsv" \
    --vocab-dir "$carry/shared/models/bert-base-uncased" --config-dir "$carry/shared/models/bert-base-uncased" \
    --minilm-dir "$carry/minilm-f16" --models bert_base minilm --paddings max_length --precisions bf16 fp8 \
    --batch-sizes 1 8 16 32 --trials 3 --min-trial-seconds 2 --idle-seconds 1 --warmup-seconds 1 \
    --gpu-warmup-seconds 25 --out "$fs/ours.json"
  grep -h "^nlpf" "$res/logs/fp8_small_batches.log" | tee -a "$out/summary.txt"
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
  # BENCH_GPU_OURS_ARGS: more options of nlpf's side, e.g. "--last-layer all-tokens".
  run_step bench_gpu_ours build-gpu/bench/gpu_inference_bench "${common[@]}" ${BENCH_GPU_OURS_ARGS:-} \
    --out "$res/gpu_inference_ours.json"
  run_step bench_gpu_peer env PYTHONUNBUFFERED=1 python3 bench/peer/peer_gpu_inference.py "${common[@]}" \
    --engines $engines --compile-modes reduce-overhead --compile-shapes dynamic --gpu-warmup-seconds 0 \
    --deadline-seconds "${BENCH_GPU_PEER_DEADLINE:-330}" --out "$res/gpu_inference_peer.json"
  python3 bench/report_gpu_inference.py "$res/gpu_inference_ours.json" "$res/gpu_inference_peer.json" \
    --markdown-out "$out/gpu_inference_report.md" | tee -a "$out/summary.txt"
  cp "$res/gpu_inference_ours.json" "$res/gpu_inference_peer.json" "$out/" 2>/dev/null || true
fi
if want gemm_probe; then
  run_step gemm_probe_build build_target gemm_algo_probe
  # GEMM_PROBE_TF32_ROWS / GEMM_PROBE_FP32_ROWS (empty: that mode not run), GEMM_PROBE_FORMS (plain, residual)
  # shellcheck disable=SC2206  # GEMM_PROBE_FORMS: a space-separated list, split on purpose
  probe_forms=(--forms ${GEMM_PROBE_FORMS:-plain} --budget-seconds 4)
  : >"$res/gemm_probe.txt"
  for probe_mode in tf32 fp32; do
    if [[ $probe_mode == tf32 ]]; then probe_rows=${GEMM_PROBE_TF32_ROWS-4096 8192 32768}; else
      probe_rows=${GEMM_PROBE_FP32_ROWS-8192 32768}; fi
    [[ -z $probe_rows ]] && continue
    run_step "gemm_probe_$probe_mode" build-gpu/bench/gemm_algo_probe --modes "$probe_mode" --rows $probe_rows \
      "${probe_forms[@]}"
    cat "$res/logs/gemm_probe_$probe_mode.log" >>"$res/gemm_probe.txt"
  done
  grep -h -E ' (first|heuristic|per_algo|configs) ' "$res/gemm_probe.txt" | tee -a "$out/summary.txt"
fi
# engine_ab STEP OPTION "A B" PRECISIONS PADDINGS BATCHES [MIN_TRIAL_SECONDS]: bench/gpu_inference_bench with
# OPTION A, then OPTION B, twice (A B A B), bert_base at those precisions, paddings and batch sizes, 3 trials of
# >= MIN_TRIAL_SECONDS (1) a point;
# results/STEP/<value>_<round>.json, the printed lines and bench/report_ab.py's table (results/STEP/ab_table.md) in
# the summary. The first run of the call warms the GPU.
ab_gpu_warm=25
# gpu_inference_bench on the bert-base shape (random weights) and SST-2 dev: what the A/B and profile steps run.
bert_base_bench=(build-gpu/bench/gpu_inference_bench --dev-tsv "$carry/shared/data/sst2/dev.tsv"
  --vocab-dir "$carry/shared/models/bert-base-uncased" --config-dir "$carry/shared/models/bert-base-uncased"
  --models bert_base)
engine_ab() {
  local step=$1 option=$2 values=$3 precisions=$4 paddings=$5 batches=$6 min_trial=${7:-1} round value
  mkdir -p "$res/$step"
  run_step "${step}_build" build_target gpu_inference_bench
  # shellcheck disable=SC2206  # precisions, paddings, batches: space-separated lists, split on purpose
  local common=(--precisions $precisions --paddings $paddings --batch-sizes $batches --trials 3
    --min-trial-seconds "$min_trial" --idle-seconds 1 --warmup-seconds 1)
  for round in 1 2; do
    for value in $values; do
      run_step "${step}_${value}_$round" "${bert_base_bench[@]}" "${common[@]}" "$option" "$value" \
        --gpu-warmup-seconds "$ab_gpu_warm" --out "$res/$step/${value}_$round.json"
      ab_gpu_warm=0
      grep -h "^nlpf" "$res/logs/${step}_${value}_$round.log" | sed "s/^/$value: /" | tee -a "$out/summary.txt"
    done
  done
  # shellcheck disable=SC2086  # values: the two option values, A then B
  python3 bench/report_ab.py "$res/$step" $values | tee "$res/$step/ab_table.md" >>"$out/summary.txt"
}
if want tf32_ab; then
  engine_ab tf32_ab --tf32-attention "cuda-cores tensor-cores" tf32 max_length "32 64 256" 1.5
  run_step tf32_ab_autotune64 "${bert_base_bench[@]}" --precisions tf32 --paddings max_length \
    --batch-sizes 32 64 256 --trials 3 --min-trial-seconds 1.5 --idle-seconds 1 --warmup-seconds 1 --autotune-candidates 64 --gpu-warmup-seconds 0 \
    --out "$res/tf32_ab/autotune64.json"
  grep -h "^nlpf" "$res/logs/tf32_ab_autotune64.log" | sed "s/^/autotune 64: /" | tee -a "$out/summary.txt"
fi
if want first_token; then
  engine_ab first_token --last-layer "all-tokens first-token" "${FIRST_TOKEN_PRECISIONS:-fp32 tf32}" \
    "${FIRST_TOKEN_PADDINGS:-max_length longest}" "${FIRST_TOKEN_BATCHES:-32 64 256}"
fi
if want length_multiple; then
  engine_ab length_multiple --length-multiple "8 1" "${LENGTH_MULTIPLE_PRECISIONS:-fp32 tf32}" longest \
    "${LENGTH_MULTIPLE_BATCHES:-32 64 256}"
fi
if want f32_residual; then
  engine_ab f32_residual --f32-residual "epilogue layer-norm" "${RESIDUAL_PRECISIONS:-fp32 tf32}" \
    "${RESIDUAL_PADDINGS:-max_length longest}" "${RESIDUAL_BATCHES:-32 64 256}"
fi
if want autotune_rounds; then
  engine_ab autotune_rounds --autotune-rounds "1 3" "${AUTOTUNE_ROUNDS_PRECISIONS:-tf32 fp32}" \
    "${AUTOTUNE_ROUNDS_PADDINGS:-max_length longest}" "${AUTOTUNE_ROUNDS_BATCHES:-32 64 256}"
  python3 bench/report_autotune.py "$res"/autotune_rounds/*.json | tee "$res/autotune_rounds/choices.md" >>"$out/summary.txt"
fi
if want tf32_profile; then
  prof="$res/tf32_profile"
  mkdir -p "$prof"
  run_step tf32_profile_build build_target gpu_inference_bench
  # PROFILE_POINTS: precision:batch:padding, one ncu run each (default tf32:64:max_length), the engine's defaults
  # (PROFILE_ARGS: more gpu_inference_bench options). 230 kernels hold two bert_base forwards (about 100 kernels
  # each) whatever the first, so report_kernel_profile.py --unit forward finds a whole one.
  for point in ${PROFILE_POINTS:-tf32:64:max_length}; do
    IFS=: read -r p_precision p_batch p_padding <<<"$point"
    name="ncu_${p_precision}_b${p_batch}_${p_padding}"
    # shellcheck disable=SC2206  # PROFILE_ARGS: options, split on purpose
    point_args=(--cuda-profiler-range --precisions "$p_precision" --paddings "$p_padding" --batch-sizes "$p_batch"
      --trials 1 --min-trial-seconds 1 --warmup-seconds 0.5 --idle-seconds 0 --gpu-warmup-seconds 0 ${PROFILE_ARGS:-})
    # The GEMMs' algorithms are an unprofiled run's of the same point (--autotune-replay): under ncu, even outside
    # its collection range, the autotune's timings are ncu's work on each launch, and they chose kernels that an
    # unprofiled run rejects (up to 2.8x slower; 2026-12-01).
    run_step "tf32_profile_${name}_choices" "${bert_base_bench[@]}" "${point_args[@]}" \
      --out "$prof/${name}_choices.json"
    grep -h "^nlpf" "$res/logs/tf32_profile_${name}_choices.log" | sed "s/^/unprofiled: /" | tee -a "$out/summary.txt"
    # PROFILE_CACHE_CONTROL: none (the default) leaves L2 as the previous kernel left it, as in a measured run,
    # where each kernel reads what the one before wrote; ncu's own default, all, flushes it before every kernel
    # (every inference profile in bench/results up to 2026-12-01).
    run_step "tf32_profile_$name" ncu --clock-control none --cache-control "${PROFILE_CACHE_CONTROL:-none}" \
      --metrics gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second --csv --profile-from-start off \
      --launch-skip 300 --launch-count 230 --log-file "$prof/ncu.log" \
      "${bert_base_bench[@]}" "${point_args[@]}" --autotune-replay "$prof/${name}_choices.json"
    grep '^"' "$prof/ncu.log" | gzip -9 >"$prof/$name.csv.gz" && rm "$prof/ncu.log"
    python3 bench/report_kernel_profile.py --unit forward "$prof/$name.csv.gz" | tee -a "$out/summary.txt"
  done
fi
if want measure; then
  # Issue 4 item 8: about 4 minutes of GPU load; exit 0 only when checks a, b and c all pass.
  run_step measure build-gpu/bench/gpu_measure_validation --out "$res/measure_validation.json"
  grep -h -E '^(GPU |memory:|check |RESULT)' "$res/logs/measure.log" | tee -a "$out/summary.txt"
  cp "$res/measure_validation.json" "$out/" 2>/dev/null || true  # small; also readable without results.tgz
fi
if want finetune_gpu; then
  # Issue 12 items 5-6: nlpf phase1 on the GPU, then the Hugging Face Trainer peer, same model, data and recipe.
  # FINETUNE_NLPF_PRECISIONS   nlpf --train-precision values (default "fp32"; "" runs none)
  # FINETUNE_PEER_RUNS         peer runs as precision:padding (default "fp32:max_length fp32:longest
  #                            bf16:max_length bf16:longest"; "" runs none)
  # FINETUNE_MAX_TRAIN_EXAMPLES  --max-train-examples for both (unset: all 67,349; a full run takes minutes,
  #                            so give one or two runs per device call)
  # FINETUNE_DEADLINE_S        every run ends by this many seconds after device_check started (default 570, for
  #                            a 600 s device call: the build counts); a run with under 30 s left is skipped
  # FINETUNE_RUN_TIMEOUT_S     at most this long per run (default 540)
  # FINETUNE_WARMUP_SECONDS    GPU matmul load before each run's idle baseline and training (default 25: a
  #                            fresh H200 draws ~28% more power for its first ~22 s of load): the peer's
  #                            --warmup-seconds, and before nlpf (phase1 has none of its own) the same load
  #                            from bench/peer/peer_gpu_inference.py's gpu_warmup; 0: none
  # FINETUNE_NLPF_EXTRA        more nlpf phase1 arguments (e.g. "--trials 3 --min-trial-seconds 2")
  # FINETUNE_SEEDS             seeds, each run of both sides once per seed (default 42, the recipe's; more seeds
  #                            measure the accuracy spread, as bench/RESULTS.md's "Accuracy over seeds")
  # Results in results/finetune_gpu/: nlpf_<p>/ (metrics.json, run.json, train_log.csv, pareto.csv,
  # power_trace.csv, predictions.jsonl; no weights), peer_<p>_<padding>.json and _train_log.csv.
  # The Trainer is launch-bound: its time and energy follow the host. Run one fine-tune at a time on a host (two
  # Trainer runs at once took 18-23% longer on 2026-11-30); host_load.txt records the load average and the other
  # GPU processes before each run, so a reader can see what shared the host.
  ft="$res/finetune_gpu"
  rm -rf "$ft" && mkdir -p "$ft"
  ft_host_load() {  # ft_host_load RUN: a line of host load before RUN
    echo "$1 $(date -u +%FT%TZ) loadavg $(cut -d' ' -f1-3 /proc/loadavg) cpus $(nproc) gpu_processes" \
      "$(nvidia-smi --query-compute-apps=pid --format=csv,noheader 2>/dev/null | wc -l)" >>"$ft/host_load.txt"
  }
  ft_limit=()
  [ -n "${FINETUNE_MAX_TRAIN_EXAMPLES:-}" ] && ft_limit=(--max-train-examples "$FINETUNE_MAX_TRAIN_EXAMPLES")
  ft_warmup=${FINETUNE_WARMUP_SECONDS:-25}
  ft_time() {  # seconds the next run may take: FINETUNE_RUN_TIMEOUT_S, cut to what is left before the deadline
    local left=$((${FINETUNE_DEADLINE_S:-570} - SECONDS - 15)) cap=${FINETUNE_RUN_TIMEOUT_S:-540}
    echo $((left < cap ? left : cap))
  }
  for seed in ${FINETUNE_SEEDS:-42}; do
    ft_tag=""
    [ "$seed" != 42 ] && ft_tag="_seed$seed"
    for p in ${FINETUNE_NLPF_PRECISIONS-fp32}; do
      t=$(ft_time)
      if [ "$t" -lt 30 ]; then note "finetune_nlpf_$p$ft_tag: skipped, ${t} s left before FINETUNE_DEADLINE_S"; continue; fi
      if [ "$ft_warmup" != 0 ]; then  # nlpf phase1 has no GPU warm-up of its own before training: the peer's
        python3 -c 'import sys, torch; sys.path.insert(0, "bench/peer")
from peer_gpu_inference import gpu_warmup; gpu_warmup(torch, float(sys.argv[1]))' "$ft_warmup" \
          >"$res/logs/finetune_nlpf_$p${ft_tag}_gpu_warmup.log" 2>&1
        t=$(ft_time)
      fi
      # shellcheck disable=SC2086  # FINETUNE_NLPF_EXTRA is a list of arguments
      ft_host_load "nlpf_$p$ft_tag"
      run_step "finetune_nlpf_$p$ft_tag" timeout -k 10 "$t" build-gpu/nlpf phase1 --device cuda --model "$carry/minilm-f16" \
        --data-dir "$carry/shared/data/sst2" --train-precision "$p" --seed "$seed" "${ft_limit[@]}" ${FINETUNE_NLPF_EXTRA:-} \
        --runs-dir "$ft/runs_nlpf_$p$ft_tag" --quiet
      for d in "$ft/runs_nlpf_$p$ft_tag"/*/; do  # the small files of the run; its best_model/ (weights) stays behind
        [ -f "$d/metrics.json" ] || [ -f "$d/run.json" ] || continue
        mkdir -p "$ft/nlpf_$p$ft_tag"
        for f in metrics.json run.json train_log.csv pareto.csv power_trace.csv predictions.jsonl; do
          [ -f "$d/$f" ] && cp "$d/$f" "$ft/nlpf_$p$ft_tag/"
        done
      done
      rm -rf "$ft/runs_nlpf_$p$ft_tag"
      python3 - "$ft/nlpf_$p$ft_tag/metrics.json" "nlpf $p seed $seed" <<'PY' 2>/dev/null | tee -a "$out/summary.txt"
import json, sys
m = json.load(open(sys.argv[1]))
t = m.get("training", {})
e = t.get("energy") or {}
acc = [x.get("inference_benchmark_metrics", {}).get("accuracy") for x in m.get("epochs", [])]
print(f"{sys.argv[2]}: training {t.get('seconds')} s, {e.get('joules')} J (steps only), window "
      f"{e.get('window_joules')} J (evaluation included), {t.get('steps')} steps, "
      f"peak {t.get('peak_gpu_memory_mb')} MB, accuracy per epoch {acc}")
PY
    done
    for r in ${FINETUNE_PEER_RUNS-fp32:max_length fp32:longest bf16:max_length bf16:longest}; do
      prec=${r%%:*} pad=${r#*:}
      name="peer_${prec}_$pad$ft_tag"
      t=$(ft_time)
      if [ "$t" -lt 30 ]; then note "finetune_$name: skipped, ${t} s left before FINETUNE_DEADLINE_S"; continue; fi
      ft_host_load "$name"
      run_step "finetune_$name" env PYTHONUNBUFFERED=1 timeout -k 10 "$t" python3 bench/peer/peer_finetune_trainer.py \
        --model "$carry/minilm-f16" --train-tsv "$carry/shared/data/sst2/train.tsv" \
        --dev-tsv "$carry/shared/data/sst2/dev.tsv" --padding "$pad" --precision "$prec" --seed "$seed" "${ft_limit[@]}" \
        --warmup-seconds "$ft_warmup" --out "$ft/$name.json" --log-file "$ft/${name}_train_log.csv"
      python3 - "$ft/$name.json" "$name" <<'PY' 2>/dev/null | tee -a "$out/summary.txt"
import json, sys
j = json.load(open(sys.argv[1]))
r = j["results"]
print(f"{sys.argv[2]}: training {r['train_seconds']:.1f} s, {r['train_energy_j']} J (steps only), window "
      f"{r['window_seconds']} s / {r['window_energy_j']} J (evaluation included), {r['steps']} steps, "
      f"accuracy per epoch {[e['accuracy'] for e in r['per_epoch']]}, peak {r['peak_memory_mb']} MB, "
      f"complete {j['complete']}")
PY
    done
  done
fi
if want bench_train; then
  # Issue 12 item 6: "one bert-base-shape training step (batch 32, length 128, random weights) against PyTorch eager:
  # fp32 at most 0.9x its time, bf16 mixed at most 0.6x PyTorch's bf16 autocast". Both sides: random init (seed
  # 42), dropout on, random ids with every token real (mask all 1), AdamW lr 3e-5 wd 0.01, clip 1.0, linear
  # schedule; idle baseline, warm-up steps, then trials of timed steps (wall clock, CUDA events, NVML energy).
  # BENCH_TRAIN_STEPS          timed steps per trial (default 250: >= 5 s energy windows for every precision on the
  #                            H200, nlpf's bf16 step being the shortest at ~21 ms; 150 left bf16 at 3.2 s)
  # BENCH_TRAIN_TRIALS         trials (default 3)
  # BENCH_TRAIN_WARMUP_STEPS   untimed steps before the trials (default 10; compilation happens there)
  # BENCH_TRAIN_ENGINES        peer engines (default "eager"; "eager compile" adds torch.compile, ~1-2 min more)
  # BENCH_TRAIN_PEER_PRECISIONS  peer precisions (default "fp32 tf32 bf16")
  # BENCH_TRAIN_GPU_WARMUP_S   matmul load before each side (default 25: a fresh H200 draws ~28% more power for
  #                            its first ~22 s); before nlpf from bench/peer/peer_gpu_inference.py's gpu_warmup
  # BENCH_TRAIN_CAPTURE        nlpf's --capture-steps values (default "on"; "on off" measures both: the CUDA
  #                            graph's share); the report compares the first with the peer
  # Results: results/gpu_training_{ours,peer}.json (ours_<mode>.json for more modes), and gpu_training_report.md
  # and the JSONs in $OUT.
  bt_steps=${BENCH_TRAIN_STEPS:-250}
  bt_trials=${BENCH_TRAIN_TRIALS:-3}
  bt_warmup_steps=${BENCH_TRAIN_WARMUP_STEPS:-10}
  bt_gpu_warmup=${BENCH_TRAIN_GPU_WARMUP_S:-25}
  bt_common=(--config-dir "$carry/shared/models/bert-base-uncased" --batch-size 32 --seq-len 128 --steps "$bt_steps"
    --trials "$bt_trials" --warmup-steps "$bt_warmup_steps" --idle-seconds 3)
  run_step bench_train_build build_target gpu_training_bench
  if [ "$bt_gpu_warmup" != 0 ]; then  # the bench has no GPU warm-up of its own: the peers' matmul load first
    python3 -c 'import sys, torch; sys.path.insert(0, "bench/peer")
from peer_gpu_inference import gpu_warmup; gpu_warmup(torch, float(sys.argv[1]))' "$bt_gpu_warmup" \
      >"$res/logs/bench_train_gpu_warmup.log" 2>&1
  fi
  bt_first=""
  for mode in ${BENCH_TRAIN_CAPTURE:-on}; do
    bt_json="$res/gpu_training_ours.json"
    [ -n "$bt_first" ] && bt_json="$res/gpu_training_ours_capture_$mode.json"
    bt_first=${bt_first:-$mode}
    run_step "bench_train_ours_capture_$mode" build-gpu/bench/gpu_training_bench "${bt_common[@]}" \
      --precisions fp32 tf32 bf16 fp16 --capture-steps "$mode" --out "$bt_json"
  done
  # shellcheck disable=SC2086  # lists of precisions and engines
  run_step bench_train_peer env PYTHONUNBUFFERED=1 python3 bench/peer/peer_training_step.py "${bt_common[@]}" \
    --precisions ${BENCH_TRAIN_PEER_PRECISIONS:-fp32 tf32 bf16} --engines ${BENCH_TRAIN_ENGINES:-eager} \
    --gpu-warmup-seconds "$bt_gpu_warmup" --out "$res/gpu_training_peer.json"
  python3 bench/report_gpu_training.py "$res/gpu_training_ours.json" "$res/gpu_training_peer.json" \
    --markdown-out "$out/gpu_training_report.md" | tee -a "$out/summary.txt"
  cp "$res"/gpu_training_ours*.json "$res/gpu_training_peer.json" "$out/" 2>/dev/null || true
fi
if want profile_train; then
  # The profile behind issue 12's missed goals (bench/RESULTS.md): ncu's kernel durations (--clock-control none:
  # the GPU's own clocks) over a few steps of bench/gpu_training_bench with --capture-steps off (the kernels a
  # captured step replays, one by one), then bench/report_kernel_profile.py: one step's kernels by kind.
  # all-MiniLM-L6-v2 bf16 at 32 x 32 tokens (SST-2's size), bert-base fp32 and bf16 at 32 x 128.
  pt="$res/profile_train"
  mkdir -p "$pt"
  run_step profile_train_build build_target gpu_training_bench
  ncu_step() {  # ncu_step NAME CONFIG_DIR SEQ_LEN PRECISION SKIP COUNT
    run_step "profile_train_$1" bash -c 'ncu --clock-control none --metrics gpu__time_duration.sum --csv \
      --launch-skip "$5" --launch-count "$6" build-gpu/bench/gpu_training_bench --config-dir "$2" --batch-size 32 \
      --seq-len "$3" --trials 1 --warmup-steps 2 --idle-seconds 0 --steps 4 --precisions "$4" --capture-steps off \
      > "$7"' _ "$1" "$2" "$3" "$4" "$5" "$6" "$pt/ncu_$1.csv"
  }
  # ~500 kernels a MiniLM step, ~930 a bert-base step: skip the set-up and two steps, profile two or three
  ncu_step minilm_bf16 "$carry/minilm-f16" 32 bf16 1000 1300
  ncu_step bert_base_fp32 "$carry/shared/models/bert-base-uncased" 128 fp32 1500 1400
  ncu_step bert_base_bf16 "$carry/shared/models/bert-base-uncased" 128 bf16 1500 1400
  python3 bench/report_kernel_profile.py "$pt"/ncu_*.csv | tee "$out/profile_train.md" | tee -a "$out/summary.txt"
  gzip -9 "$pt"/ncu_*.csv
  # PyTorch's side of the same bert-base step: torch.profiler's kernels by the same kinds (the peer's record).
  run_step profile_train_peer python3 bench/peer/peer_training_step.py \
    --config-dir "$carry/shared/models/bert-base-uncased" --precisions fp32 bf16 --warmup-steps 5 --steps 10 \
    --trials 1 --idle-seconds 0 --gpu-warmup-seconds 0 --kernel-profile-steps 3 --out "$pt/peer_profile.json"
  python3 - "$pt/peer_profile.json" <<'PY' | tee -a "$out/profile_train.md" | tee -a "$out/summary.txt"
import json, sys
for r in json.load(open(sys.argv[1]))["records"]:
    kp = r.get("kernel_profile")
    if not kp:
        print(f"## pytorch {r['precision']}: no profile ({r.get('error')})")
        continue
    print(f"## pytorch {r['precision']} eager: {kp['kernels_per_step']:.0f} kernels, {kp['kernel_ms_per_step']:.3f} ms of kernel time a step")
    print("| kind | ms | kernels |\n|---|---|---|")
    for k in kp["by_kind"]:
        print(f"| {k['kind']} | {k['ms']:.3f} | {k['kernels']:.0f} |")
PY
fi
tar -C "$out" -czf "$out/results.tgz" results && rm -rf "$res"
note "device_check done, status $status"
cat "$out/summary.txt"
exit $status
