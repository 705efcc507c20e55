#!/usr/bin/env bash
# Train one config on one CUDA GPU within a time budget, then write the EMA weights in parts of at most 16 MiB
# (so they can be carried back from a remote accelerator machine whose results return as files <= 16 MiB).
#
#   OUT=/path bash training/gpu_train.sh training/configs/e2e-masked-gpu.json [budget_s=480] [init_from]
#
# Writes to $OUT: ema.part000..., ema.parts.json, vocab.json, data.json, log.jsonl (at most 8 files for a
# <= 40 MB model). Join and export at home:
#   python3 -m training.dlm_train.parts join $OUT/ema.parts.json --out snap.pt
#   python3 -m training.dlm_train.masked_export --run <dir with vocab.json, data.json, ckpt.pt> --snapshot snap.pt ...
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: gpu_train.sh CONFIG [budget_s] [init_from]}
budget=${2:-480}
init=${3:-}
out=${OUT:-training/runs/gpu-out}
run=training/runs/gpu-$(basename "$config" .json)
mkdir -p "$out" "$run"
device=${DEVICE:-cuda}
extra=()
if [ -n "$init" ]; then
  python3 - "$config" "$init" "$run/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c.setdefault("train", {})["init_from"] = sys.argv[2]
json.dump(c, open(sys.argv[3], "w"))
PY
  config=$run/config.json
fi
python3 -m training.dlm_train.train --config "$config" --run-dir "$run" --time-budget-s "$budget" --device "$device"
python3 - "$run" <<'PY'
import sys, torch
run = sys.argv[1]
ck = torch.load(f"{run}/ckpt.pt", map_location="cpu", weights_only=False)
torch.save({"ema": ck["ema"], "model_config": ck["model_config"], "family": ck.get("family", "continuous"),
            "config": ck["config"], "step": ck["state"]["step"], "train_time_s": ck["state"]["train_time"],
            "hardware": ck.get("hardware"), "autocast": ck.get("autocast")}, f"{run}/ema.pt")
PY
python3 -m training.dlm_train.parts split "$run/ema.pt" --out "$out/ema" --max-mib 16
cp "$run/vocab.json" "$run/data.json" "$run/log.jsonl" "$out/"
ls -la "$out"
