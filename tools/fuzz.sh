#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.cc) with clang, ASan and UBSan in build-fuzz/ and runs them.
#   tools/fuzz.sh --build-only               configure and build every target, then stop (CI)
#   tools/fuzz.sh [--seconds N] [--max-len B] [target...]
#                                            run each target (default: all) for N seconds (default 600)
# A run starts from tests/fuzz/corpus/<target>/ copied into build-fuzz/corpus/<target>/ (kept between runs,
# so coverage accumulates); findings go to build-fuzz/findings/<target>/. Exits non-zero if any target
# fails to build or reports a finding.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-fuzz"
seconds=600
max_len=4096
build_only=0
targets=()

usage() { sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=1 ;;
    --seconds) seconds="${2:?--seconds needs a value}"; shift ;;
    --seconds=*) seconds="${1#*=}" ;;
    --max-len) max_len="${2:?--max-len needs a value}"; shift ;;
    --max-len=*) max_len="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds must be a whole number, got '$seconds'" >&2; exit 2; }
[[ "$max_len" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --max-len must be a whole number, got '$max_len'" >&2; exit 2; }

# Debian's clang package gives clang-14 and the plain names; prefer the versioned ones.
cc=""; cxx=""
for v in clang-14 clang; do
  if command -v "$v" >/dev/null && command -v "${v/clang/clang++}" >/dev/null; then
    cc=$(command -v "$v"); cxx=$(command -v "${v/clang/clang++}"); break
  fi
done
[ -n "$cxx" ] || { echo "fuzz.sh: clang not found (tools/setup.sh installs clang and libclang-rt-14-dev)" >&2; exit 1; }

# Instrument everything (nlpf_core included) for coverage and sanitizers; the targets add -fsanitize=fuzzer
# for libFuzzer's main (tests/fuzz/CMakeLists.txt). UBSan findings abort so that libFuzzer reports them.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DNLPF_FUZZ=ON -DNLPF_WITH_CUDA=OFF -DNLPF_BUILD_TESTS=OFF -DNLPF_BUILD_BENCH=OFF >/dev/null

if [ ${#targets[@]} -eq 0 ]; then
  for src in "$root"/tests/fuzz/fuzz_*.cc; do
    [ -e "$src" ] && targets+=("$(basename "$src" .cc)")
  done
  build_targets=(nlpf_fuzz)
else
  for t in "${targets[@]}"; do
    [ -e "$root/tests/fuzz/$t.cc" ] || { echo "fuzz.sh: no target $t (tests/fuzz/$t.cc)" >&2; exit 2; }
  done
  build_targets=("${targets[@]}")
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no tests/fuzz/fuzz_*.cc" >&2; exit 1; }

echo "fuzz.sh: building ${targets[*]} in $build"
cmake --build "$build" -j"$(nproc)" --target "${build_targets[@]}"
[ "$build_only" -eq 1 ] && exit 0

failed=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  findings="$build/findings/$t"
  log="$build/logs/$t.log"
  mkdir -p "$corpus" "$findings" "$build/logs"
  if [ -d "$root/tests/fuzz/corpus/$t" ]; then
    cp -n "$root/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  fi
  echo "fuzz.sh: $t for ${seconds}s (corpus $corpus, log $log)"
  touch "$log.start"  # findings newer than this are this run's
  status=0
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -max_len="$max_len" -timeout=25 -rss_limit_mb=2048 \
    -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" >"$log" 2>&1 || status=$?
  runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -1 || true)
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    echo "fuzz.sh: $t FOUND A PROBLEM (exit $status); last lines of $log:" >&2
    tail -n 30 "$log" >&2
    find "$findings" -type f -newer "$log.start" | while read -r f; do
      echo "fuzz.sh: $t finding: $f (reproduce: $build/tests/fuzz/$t $f)" >&2
    done
  else
    echo "fuzz.sh: $t ok (${runs:-no run count}, corpus $(find "$corpus" -type f | wc -l) files)"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds}s without findings"
