#!/usr/bin/env bash
# The CPU training benchmark against PyTorch: `rlhf bench train --device cpu` and
# bench/torch_train.py on the same model, shapes and optimizer step, alternating (rlhf, PyTorch,
# rlhf, PyTorch, ...) so that both see the same machine state; prints one line per run and a ratio per round.
# Usage: bench/train_vs_torch.sh [ROUNDS] [PRESET...]   (default: 2 rounds of tiny small base)
# Needs: the release binary (cargo build --release) and PyTorch (pip install torch).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
shift || true
if [ $# -eq 0 ]; then set -- tiny small base; fi
bin="${RLHF_BIN:-${CARGO_TARGET_DIR:-target}/release/rlhf}"
declare -A vocab=([tiny]=1024 [small]=2048 [base]=4096)
declare -A steps=([tiny]=40 [small]=10 [base]=4)
tps() { sed -n 's/.*"train_tokens_per_s": *\([0-9.]*\).*/\1/p'; }
for p in "$@"; do
  for r in $(seq "$rounds"); do
    a=$("$bin" bench train --preset "$p" --vocab-size "${vocab[$p]}" --steps "${steps[$p]}" --device cpu | tps)
    b=$(python3 bench/torch_train.py --preset "$p" --vocab-size "${vocab[$p]}" --steps "${steps[$p]}" --threads 2 | tps)
    echo "$p round $r: rlhf $a tokens/s, pytorch $b tokens/s, ratio $(python3 -c "print(f'{$a/$b:.2f}')")"
  done
done
