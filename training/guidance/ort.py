"""Run an ONNX graph through onnxruntime-node (Python onnxruntime is not installed here) and read the outputs back."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Dict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "training", "guidance", "ort_run.mjs")


def run_onnx(model_path: str, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as d:
        inputs = []
        for name, arr in feeds.items():
            arr = np.ascontiguousarray(arr)
            if arr.dtype == np.float32:
                dtype = "float32"
            elif arr.dtype == np.int64:
                dtype = "int64"
            else:
                raise TypeError(f"input {name}: dtype {arr.dtype} (use float32 or int64)")
            arr.astype(arr.dtype.newbyteorder("<")).tofile(os.path.join(d, f"{name}.bin"))
            inputs.append({"name": name, "dtype": dtype, "dims": list(arr.shape), "file": f"{name}.bin"})
        with open(os.path.join(d, "spec.json"), "w") as f:
            json.dump({"model": os.path.abspath(model_path), "inputs": inputs}, f)
        r = subprocess.run(["node", RUNNER, d], cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"onnxruntime-node failed on {model_path}:\n{r.stderr[-3000:]}")
        with open(os.path.join(d, "outputs.json")) as f:
            meta = json.load(f)
        out = {}
        for name, m in meta.items():
            dt = {"float32": "<f4", "int64": "<i8"}[m["dtype"]]
            out[name] = np.fromfile(os.path.join(d, m["file"]), dtype=dt).reshape(m["dims"])
        return out
