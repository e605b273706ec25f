#!/usr/bin/env bash
# Train GPU recipes side by side on one CUDA machine (e.g. configs/vessel3d_robust_gpu.json and
# configs/road_robust_gpu.json): first a short run of each at the same time measures its step time, then each
# trains for MINUTES with --max-steps chosen so that its cosine schedule ends within that time.
#
#   scripts/train_gpu.sh RUNS MINUTES CONFIG [CONFIG ...]
#
# Writes RUNS/NAME_s0/ (best.safetensors + best.json, state.safetensors to resume, history.jsonl) and
# RUNS/NAME.log for each CONFIG (NAME: its file name without .json). The training command, with its
# --max-steps, is recorded in each checkpoint's metadata. Seed: $SEED (default 0); $DEVICE (default cuda);
# $CAL_STEPS / $CAL_MINUTES: length of the measuring runs (default 100 steps, at most 1.5 min; the step time
# is read off their last 25 steps).
set -euo pipefail
runs=$1; minutes=$2; shift 2
seed=${SEED:-0}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
mkdir -p "$runs"
cal=$(mktemp -d)
pids=()
for c in "$@"; do
  n=$(basename "$c" .json)
  "$py" -m napari_vesselgraph.model.train --config "$c" --device "$device" --seed "$seed" -o "$cal/$n" --no-resume \
    --max-steps "${CAL_STEPS:-100}" --max-minutes "${CAL_MINUTES:-1.5}" >"$cal/$n.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || { echo "a calibration run failed:"; tail -n 30 "$cal"/*.log; exit 1; }; done
pids=()
for c in "$@"; do
  n=$(basename "$c" .json)
  sps=$(grep -o '[0-9.]*s/step' "$cal/$n.log" | tail -n 1 | tr -d 's/step' || true)
  [ -n "$sps" ] || { echo "$n: no step time in its measuring run:"; tail -n 20 "$cal/$n.log"; exit 1; }
  steps=$("$py" -c "print(max(200, int(0.92 * $minutes * 60 / $sps)))")
  echo "$n: $sps s/step when run together -> --max-steps $steps in $minutes min"
  "$py" -m napari_vesselgraph.model.train --config "$c" --device "$device" --seed "$seed" -o "$runs/${n}_s$seed" \
    --max-steps "$steps" --max-minutes "$minutes" >"$runs/$n.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
rm -rf "$cal"
exit $rc
