#!/usr/bin/env bash
# The real-GPU check: every wgpu path this tool has, on the adapter `--device wgpu` picks, each
# step's output written to a folder so a run on a borrowed machine leaves a full record, good or
# bad. Steps: the adapters (`rlhf devices`), the kernels' compile time on this driver, `rlhf
# doctor`, train throughput for the small, base and gpt2 presets (gpt2 at vocabulary 50257, batch
# 4), generation throughput, and the tiny pipeline to its report. A step that fails is recorded
# and the next one runs; the exit status is the number of failed steps.
#
#   bench/gpu_check.sh [OUT_DIR]          (default gpu_check/<UTC time>)
#
# RLHF_BIN names the binary (default: $CARGO_TARGET_DIR/release/rlhf, else target/release/rlhf);
# RLHF_DEVICE the --device value (default wgpu). Each step is cut at its limit (compile times,
# doctor and the pipeline at GPU_CHECK_STEP_S seconds, default 150; the benches at 60-90 s), so
# the whole stays under 13 minutes even on a driver that compiles slowly (under 10 at
# GPU_CHECK_STEP_S=90); a step that finishes ends at once.
set -uo pipefail
cd "$(dirname "$0")/.."

out="${1:-gpu_check/$(date -u +%Y%m%dT%H%M%SZ)}"
bin="${RLHF_BIN:-${CARGO_TARGET_DIR:-target}/release/rlhf}"
dev="${RLHF_DEVICE:-wgpu}"
limit="${GPU_CHECK_STEP_S:-150}"
mkdir -p "$out"
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release, or set RLHF_BIN" >&2; exit 2; }

failed=0
summary="$out/summary.txt"
: >"$summary"
step() { # name, limit in seconds, command...
  local name="$1" lim="$2"
  shift 2
  local start=$SECONDS rc=0
  echo "== $name: $*" | tee -a "$summary"
  timeout --signal=INT --kill-after=10 "$lim" "$@" >"$out/$name.log" 2>&1 || rc=$?
  local took=$((SECONDS - start))
  if [ "$rc" = 0 ]; then
    echo "   ok in ${took} s" | tee -a "$summary"
  else
    failed=$((failed + 1))
    [ "$rc" = 124 ] && why="cut at ${lim} s" || why="exit $rc"
    echo "   FAILED ($why) after ${took} s; last lines:" | tee -a "$summary"
    tail -5 "$out/$name.log" | sed 's/^/     /' | tee -a "$summary"
  fi
  grep -E "tokens/s|verdict|driver|variants in|slowest|dispatches|device:" "$out/$name.log" \
    | head -12 | sed 's/^/   | /' | tee -a "$summary"
}

{ uname -a; command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; } \
  >"$out/host.txt" 2>&1
step devices 30 "$bin" devices
step compile_times "$limit" "$bin" kernels --compile-times --device "$dev"
step doctor "$limit" "$bin" doctor --device "$dev"
step train_small 60 "$bin" bench train --preset small --device "$dev"
step train_base 60 "$bin" bench train --preset base --vocab-size 4096 --device "$dev"
step train_gpt2 90 "$bin" bench train --preset gpt2 --vocab-size 50257 --batch-size 4 --steps 5 --device "$dev"
step generate 60 "$bin" bench generate --preset small --device "$dev"
step pipeline_tiny "$limit" "$bin" pipeline --preset tiny --device "$dev" --out "$out/pipeline_tiny"
cp "$out/pipeline_tiny/report.md" "$out/pipeline_tiny_report.md" 2>/dev/null || true
echo "$failed step(s) failed; outputs in $out" | tee -a "$summary"
exit "$failed"
