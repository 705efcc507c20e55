#!/bin/sh
# CI smoke test: train a tiny config for a few steps on a slice of E2E, export a bundle, sample from it, and add
# tiny guidance classifiers + scorer. The Python unit tests run separately (npm run test:python).
#   training/smoke.sh [outdir]        (default: tests/.generated/tiny-e2e)
set -eu
cd "$(dirname "$0")/.."
OUT="${1:-tests/.generated/tiny-e2e}"
PY="${PYTHON:-/usr/bin/python3}"
RUN="$(mktemp -d "${TMPDIR:-/tmp}/dlm-smoke-run.XXXXXX")"
trap 'rm -rf "$RUN"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
"$PY" -m training.dlm_train.train --config training/configs/tiny.json --run-dir "$RUN" --max-steps 10
"$PY" -m training.dlm_train.train --config training/configs/tiny.json --run-dir "$RUN"   # resumes to max_steps
VERIFY=""
if command -v node >/dev/null 2>&1 && [ -d node_modules/onnxruntime-node ]; then VERIFY="--verify-node"; fi
"$PY" -m training.dlm_train.export --run "$RUN" --out "$OUT" --id tiny-e2e --name "Tiny E2E (smoke test)" \
  --version 0.0.1 --dev training/fixtures/e2e-dev-slice.csv --card-samples 4 --card-steps 10 $VERIFY
"$PY" -m training.dlm_train.sample --bundle "$OUT" --samples 2 --steps 10 --json > /dev/null
# int8 denoiser variant (the tiny model's matrices are small: quantize every MatMul weight of 16+ rows/columns)
"$PY" -m training.dlm_train.quantize --bundle "$OUT" --min-dim 16
# guidance classifiers + fluency scorer into the tiny bundle (issue 4); torch references for tests/unit/guidance
"$PY" -m training.guidance.train_all --bundle "$OUT" --tiny --fixtures "$(dirname "$OUT")/guidance" \
  --train training/fixtures/e2e-train-slice.csv --dev training/fixtures/e2e-dev-slice.csv
# classifiers trained and saved only (a long run's first half; --classifiers-ckpt exports it later)
"$PY" -m training.guidance.train_all --bundle "$OUT" --tiny --train-only --skip-scorer --save-dir "$RUN/cls" \
  --train training/fixtures/e2e-train-slice.csv --dev training/fixtures/e2e-dev-slice.csv
test -s "$RUN/cls/classifiers.pt"
# a bundle's classifiers recovered from its graphs (checked against them in onnxruntime), trained on for a few steps
"$PY" -m training.guidance.from_bundle --bundle "$OUT" --out "$RUN/recovered/classifiers.pt"
"$PY" -m training.guidance.train_all --bundle "$OUT" --tiny --train-only --skip-scorer --save-dir "$RUN/cls2" \
  --classifiers-ckpt "$RUN/recovered/classifiers.pt" --classifiers-continue \
  --train training/fixtures/e2e-train-slice.csv --dev training/fixtures/e2e-dev-slice.csv
test -s "$RUN/cls2/classifiers.pt"
echo "smoke: bundle at $OUT"
