#!/usr/bin/env bash
# The GPU check of fsmoe's CUDA backend (issue 6), for a machine with one NVIDIA GPU, the CUDA
# toolkit, cmake and Python (PyTorch optional), and no network or Node:
#
#   bash scripts/gpu-check.sh OUTDIR
#
# It builds the standalone replay tool (native/tools/fsmoe-replay, the runtime's C++ sources and
# the CUDA backend) with cmake, then runs it on the plans and host-reference outputs that
# scripts/gpu-prepare.ts compiled beforehand (committed in scripts/gpu-check/; another folder with
# FSMOE_GPU_CHECK_PREPARED=DIR) and reports, in one table at the end:
#   - the cuda backend against the host reference on the same seeds (fp32 within 1e-4, bf16 within 2e-2),
#     on one rank (plain and through NCCL) and four ranks (loopback collectives on the one GPU);
#   - routing + order + restore of our kernels against a plain PyTorch router (target >= 1.4x);
#   - expert GEMM throughput against the device's peak (and torch.matmul);
#   - iteration time eager vs CUDA graph;
#   - a profile fitted on the GPU, and predicted vs measured iteration time (target within 10%).
# Full logs go to OUTDIR (gpu-check.log, build.log, host/, gpu/, torch.json, gpu-profile.json).
# Exit status: 0 every check passed, 1 a check failed, 2 the build or a tool is missing,
# 3 no CUDA device (the non-GPU steps still ran). Budget: under 8 minutes.
#
# Environment: CUDA_ARCH (e.g. 90; default: the GPU's, from nvidia-smi), FSMOEC_CUBLAS_PATH and
# FSMOEC_NCCL_PATH (default: looked up in the CUDA toolkit and PyTorch's wheels), NVCC.
set -u -o pipefail

if [ $# -lt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
OUT=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREP=${FSMOE_GPU_CHECK_PREPARED:-$ROOT/scripts/gpu-check}
mkdir -p "$OUT" || { echo "gpu-check: cannot create $OUT" >&2; exit 2; }
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu-check.log
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
START=$(date +%s)
say() { echo "[gpu-check $(( $(date +%s) - START ))s] $*"; }
have() { command -v "$1" > /dev/null 2>&1; }
# Run with a time limit when coreutils' timeout exists.
limit() { local s=$1; shift; if have timeout; then timeout --kill-after=10 "$s" "$@"; else "$@"; fi; }

say "output in $OUT; prepared plans in $PREP"
[ -f "$PREP/manifest.json" ] || { say "no $PREP/manifest.json: run \`npx tsx scripts/gpu-prepare.ts\` where Node exists"; exit 2; }

# ── 1. Tools ─────────────────────────────────────────────────────────────────────────────────
NVCC=${NVCC:-$(command -v nvcc || true)}
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
have cmake || { say "cmake not found: it is needed to build fsmoe-replay"; exit 2; }
PY=$(command -v python3 || command -v python || true)
if [ -n "$NVCC" ]; then say "nvcc: $NVCC ($("$NVCC" --version | tail -1))"; else say "nvcc not found: building the host backend only (the GPU steps will report that)"; fi
[ -n "$PY" ] && say "python: $PY" || say "python not found: the PyTorch comparison and the table's formatting are skipped"

# ── 2. Build (only the tool: it needs no Node headers) ─────────────────────────────────────
ARCH=${CUDA_ARCH:-}
if [ -z "$ARCH" ] && have nvidia-smi; then
  ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2> /dev/null | head -1 | tr -d '. ' || true)
fi
CMAKE_ARGS=(-S "$ROOT/native" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release)
[ -n "$NVCC" ] && CMAKE_ARGS+=(-DCMAKE_CUDA_COMPILER="$NVCC") || CMAKE_ARGS+=(-DFSMOEC_WITH_CUDA=OFF)
[ -n "$ARCH" ] && CMAKE_ARGS+=(-DCMAKE_CUDA_ARCHITECTURES="$ARCH")
JOBS=$( (nproc || echo 4) 2> /dev/null)
say "building fsmoe-replay (cuda archs: ${ARCH:-the default 80 and 90}, $JOBS jobs; log: build.log)"
if ! limit 150 cmake "${CMAKE_ARGS[@]}" > "$OUT/build.log" 2>&1 || ! limit 150 cmake --build "$OUT/build" --target fsmoe-replay -j "$JOBS" >> "$OUT/build.log" 2>&1; then
  tail -30 "$OUT/build.log"
  say "the build failed (see $OUT/build.log)"
  exit 2
fi
TOOL=$OUT/build/Release/fsmoe-replay
[ -x "$TOOL" ] || { say "the build produced no $TOOL"; exit 2; }
say "built $TOOL"

# ── 3. Libraries: cuBLAS and NCCL from the toolkit or PyTorch's wheels, unless given ───────
find_lib() {  # $1: file name pattern; prints the first match
  local pat=$1 d
  for d in ${CUDA_HOME:-/usr/local/cuda}/lib64 /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
    for f in $d/$pat; do [ -e "$f" ] && { echo "$f"; return; }; done
  done
  if [ -n "$PY" ]; then
    local sp
    for sp in $("$PY" -c 'import site,sys; print(" ".join(site.getsitepackages()+[site.getusersitepackages()]))' 2> /dev/null); do
      [ -d "$sp/nvidia" ] || continue
      f=$(find "$sp/nvidia" -name "$pat" 2> /dev/null | sort -r | head -1)
      [ -n "$f" ] && { echo "$f"; return; }
    done
  fi
}
if [ -z "${FSMOEC_CUBLAS_PATH:-}" ]; then
  p=$(find_lib 'libcublas.so.13'); [ -z "$p" ] && p=$(find_lib 'libcublas.so.12')
  [ -n "$p" ] && export FSMOEC_CUBLAS_PATH=$p LD_LIBRARY_PATH=$(dirname "$p")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
if [ -z "${FSMOEC_NCCL_PATH:-}" ]; then
  p=$(find_lib 'libnccl.so.2')
  [ -n "$p" ] && export FSMOEC_NCCL_PATH=$p
fi
export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-lo}  # one machine, maybe no network
"$TOOL" info --json "$OUT/info.json"
INFO=$?

# ── 4. The prepared plans against the host backend (no GPU needed) ──────────────────────────
say "host self-check of the prepared plans and references"
limit 120 "$TOOL" suite "$PREP/manifest.json" --backend host --no-sweep --no-bench --out "$OUT/host" > "$OUT/host.log" 2>&1
HOST=$?
tail -3 "$OUT/host.log"

# ── 5. The GPU suite ───────────────────────────────────────────────────────────────────────
GPU=3
if [ "$INFO" -eq 3 ]; then
  say "no CUDA device here: $(grep -m1 'device:' "$LOG" | sed 's/^ *device: *//')"
  say "the GPU steps are skipped; the check is ready to run on a machine with a GPU"
  mkdir -p "$OUT/gpu"
  "$TOOL" suite "$PREP/manifest.json" --out "$OUT/gpu" > "$OUT/gpu.log" 2>&1
else
  say "cuda backend: cases, profile sweep and benchmarks (log: gpu.log)"
  limit 210 "$TOOL" suite "$PREP/manifest.json" --out "$OUT/gpu" > "$OUT/gpu.log" 2>&1
  GPU=$?
  tail -4 "$OUT/gpu.log"
  cp -f "$OUT/gpu/gpu-profile.json" "$OUT/gpu-profile.json" 2> /dev/null || true
  if [ -n "$PY" ]; then
    say "PyTorch router and matmul on the same shapes"
    limit 90 "$PY" "$ROOT/scripts/gpu-check.py" torch "$PREP/manifest.json" "$OUT/torch.json" > "$OUT/torch.log" 2>&1 || say "the PyTorch step failed (see torch.log)"
  fi
fi

# ── 6. The table ───────────────────────────────────────────────────────────────────────────
say "done in $(( $(date +%s) - START )) s"
if [ -n "$PY" ]; then
  "$PY" "$ROOT/scripts/gpu-check.py" table "$OUT"
  STATUS=$?
else
  echo "(no python: raw results in $OUT/gpu/suite.json and $OUT/host/suite.json)"
  STATUS=$GPU
fi
[ "$HOST" -ne 0 ] && [ "$STATUS" -eq 0 ] && STATUS=1
exit "$STATUS"
