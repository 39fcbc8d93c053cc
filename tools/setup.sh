#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, when they are missing.
# Usage: tools/setup.sh                   (uses sudo when not root; does nothing when all are present)
#        tools/setup.sh --print-packages  (the list, one per line: tools/check_build_deps.sh reads it)
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libopenblas-dev            # BLAS (CMake FindBLAS; OpenBLAS by default)
  libdnnl-dev                # oneDNN: bf16 GEMMs for bf16 inference on CPUs with AVX512-BF16
  nlohmann-json3-dev libcli11-dev libutf8proc-dev
  libplplot-dev plplot-driver-cairo
  libcurl4-openssl-dev libzip-dev libssl-dev   # downloads: HTTP, SST-2.zip, SHA-256 (libcrypto)
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev libomp-dev  # libFuzzer targets (tools/fuzz.sh); clang needs libomp for OpenMP
  llvm-14 lld-14  # the clang toolchain CMake picks for them: llvm-ar/ranlib archive, ld.lld is recorded
  slurmctld slurmd slurm-client munge  # a one-node Slurm for the job-array tests (tools/slurm_local.sh)
)

if [ "${1:-}" = "--print-packages" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
