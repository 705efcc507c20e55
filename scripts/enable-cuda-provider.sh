#!/bin/sh
# Opt in to ONNX Runtime's CUDA execution provider for DLM Studio on Linux x64.
#
# onnxruntime-node ships the cpu and webgpu providers; the CUDA provider's libraries
# (libonnxruntime_providers_cuda.so, _shared.so, _tensorrt.so) are too large for npm and are fetched from
# NuGet by onnxruntime-node's own install script. This runs that script with its CUDA option
# (ONNXRUNTIME_NODE_INSTALL=cuda12). Needs: internet access, an NVIDIA driver, CUDA 12 and cuDNN 9 runtime
# libraries on the library path. Afterwards `dlm-studio models` lists cuda as usable and `--device auto` picks it.
#
#   scripts/enable-cuda-provider.sh            install the CUDA provider
#   scripts/enable-cuda-provider.sh --check    only report what is installed
set -eu
cd "$(dirname "$0")/.."
ORT=node_modules/onnxruntime-node
BIN="$ORT/bin/napi-v6/linux/x64"

if [ "$(uname -s)" != "Linux" ] || [ "$(uname -m)" != "x86_64" ]; then
  echo "enable-cuda-provider: only Linux x64 has a CUDA provider package for onnxruntime-node (this is $(uname -s) $(uname -m))" >&2
  exit 1
fi
if [ ! -f "$ORT/script/install.js" ]; then
  echo "enable-cuda-provider: $ORT is missing; run npm install first" >&2
  exit 1
fi

report() {
  if [ -f "$BIN/libonnxruntime_providers_cuda.so" ]; then echo "CUDA provider: installed ($BIN)"; else echo "CUDA provider: not installed"; fi
  if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | sed 's/^/GPU: /'; else echo "GPU: nvidia-smi not found (no NVIDIA driver?)"; fi
  for lib in libcudart.so.12 libcublas.so.12 libcudnn.so.9; do
    if ldconfig -p 2>/dev/null | grep -q "$lib"; then echo "$lib: found"; else echo "$lib: NOT found on the library path (the CUDA provider will fail to load)"; fi
  done
}

if [ "${1:-}" = "--check" ]; then
  report
  exit 0
fi

echo "enable-cuda-provider: downloading the CUDA provider for onnxruntime-node (from NuGet)..."
ONNXRUNTIME_NODE_INSTALL=cuda12 node "$ORT/script/install.js"
report
node -e "const o=require('onnxruntime-node'); const c=o.listSupportedBackends().find(b=>b.name==='cuda'); console.log('onnxruntime-node reports cuda bundled:', c ? c.bundled : false)"
echo "enable-cuda-provider: done; check with: dlm-studio models --device cuda"
