"""The matrix products of a bundle's int8 denoiser, each alone: onnxruntime-node (int8 as the engine runs them, and
fp32) against PyTorch (fp32 and bf16 autocast), per step at the bench's batch sizes (issue 14).

`dlm-studio bench` times whole steps. This asks the narrower question under it: how fast can each runtime multiply
the denoiser's weight matrices on this CPU? Where PyTorch's bf16 products (on AMX tiles) take about as long as the
engine's int8 ones, no change outside the products can make the engine's step twice as fast as PyTorch's.

Each product is timed as its own graph: float activations [B x canvas, K] -> QuantizeLinear (a static scale, as the
calibrated graph) -> MatMulIntegerToFloat (int8 weights, one scale per output column, bias) for the engine's int8
path; MatMul + Add for fp32; F.linear in PyTorch, in fp32 and under bf16 autocast (weights cast once, as autocast's
cache does over a sampling loop). Per step = the sum over the graph's products of count x median ms, at the faster
of 1 and 2 threads for each runtime.

    python3 -m training.dlm_train.products_bench --bundle models/e2e-default --batches 8,64 --out products.json
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from .train import cpu_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMER = os.path.join(ROOT, "training", "dlm_train", "ort_time.mjs")


def quantized_products(int8_path: str) -> Dict[Tuple[int, int], int]:
    """(K, N) -> how many MatMulIntegerToFloat nodes of the graph multiply by a K x N int8 weight."""
    m = onnx.load(int8_path, load_external_data=False)
    dims = {i.name: tuple(i.dims) for i in m.graph.initializer}
    out: Dict[Tuple[int, int], int] = collections.Counter()
    for n in m.graph.node:
        if n.op_type == "MatMulIntegerToFloat" and len(dims.get(n.input[1], ())) == 2:
            out[dims[n.input[1]]] += 1
    if not out:
        raise ValueError(f"{int8_path}: no MatMulIntegerToFloat with a 2-D int8 weight (not an int8 denoiser?)")
    return dict(out)


def _save(nodes, inits, rows: int, k: int, n: int, path: str, opsets) -> None:
    # the graph returns the product's first row only: copying a [rows, N] output into JavaScript would cost more than
    # some products, and inside the denoiser nothing is copied out
    nodes = nodes + [helper.make_node("Slice", ["Y", "s0", "s1"], ["Y0"])]
    inits = inits + [numpy_helper.from_array(np.array([0], np.int64), "s0"), numpy_helper.from_array(np.array([1], np.int64), "s1")]
    g = helper.make_graph(nodes, "product", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [rows, k])],
                          [helper.make_tensor_value_info("Y0", TensorProto.FLOAT, [1, n])], inits)
    model = helper.make_model(g, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, path)


def write_graphs(k: int, n: int, rows: int, folder: str, rng: np.random.Generator) -> Dict[str, str]:
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32) * 0.01
    scale_b = (np.abs(w).max(0) / 127).astype(np.float32)
    wq = np.clip(np.round(w / scale_b), -127, 127).astype(np.int8)
    paths = {"int8": os.path.join(folder, f"int8_{rows}_{k}_{n}.onnx"), "fp32": os.path.join(folder, f"fp32_{rows}_{k}_{n}.onnx")}
    _save([helper.make_node("QuantizeLinear", ["A", "sa", "za"], ["Aq"]),
           helper.make_node("MatMulIntegerToFloat", ["Aq", "W", "sa", "sw", "za", "zw", "bias"], ["Y"], domain="com.microsoft")],
          [numpy_helper.from_array(np.array(1 / 127, np.float32), "sa"), numpy_helper.from_array(np.array(128, np.uint8), "za"),
           numpy_helper.from_array(wq, "W"), numpy_helper.from_array(scale_b, "sw"),
           numpy_helper.from_array(np.zeros(n, np.int8), "zw"), numpy_helper.from_array(bias, "bias")],
          rows, k, n, paths["int8"], [helper.make_opsetid("", 14), helper.make_opsetid("com.microsoft", 1)])
    _save([helper.make_node("MatMul", ["A", "W"], ["AW"]), helper.make_node("Add", ["AW", "bias"], ["Y"])],
          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(bias, "bias")],
          rows, k, n, paths["fp32"], [helper.make_opsetid("", 14)])
    return paths


def time_torch(k: int, n: int, rows: int, threads: int, bf16: bool, seconds: float) -> float:
    """Median ms of F.linear on [rows, K] x [N, K]^T (+ bias), in fp32 or under bf16 autocast."""
    torch.set_num_threads(threads)
    w = torch.nn.Parameter(torch.randn(n, k) / k ** 0.5)
    b = torch.nn.Parameter(torch.zeros(n))
    x = torch.sin(torch.arange(rows * k, dtype=torch.float32) * 0.37).reshape(rows, k)
    times: List[float] = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(3):
            F.linear(x, w, b)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds or len(times) < 5:
            t = time.perf_counter()
            F.linear(x, w, b)
            times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def run(bundle: str, batches: List[int], threads: List[int], seconds: float, bf16: bool) -> dict:
    man = json.load(open(os.path.join(bundle, "manifest.json")))
    int8 = (man.get("denoiser") or {}).get("int8")
    if not int8:
        raise ValueError(f"{bundle}/manifest.json: denoiser.int8 is missing; this bench times an int8 denoiser's products")
    canvas = int(man["canvas"]["length"])
    products = quantized_products(os.path.join(bundle, int8["file"]))
    rng = np.random.default_rng(0)
    rows_out = []
    with tempfile.TemporaryDirectory() as d:
        graphs, where = [], {}
        for b in batches:
            for (k, n) in products:
                for kind, p in write_graphs(k, n, b * canvas, d, rng).items():
                    graphs.append({"file": p, "input": "A", "dims": [b * canvas, k]})
                    where[p] = (b, k, n, kind)
        spec = os.path.join(d, "spec.json")
        json.dump({"threads": threads, "seconds": seconds, "graphs": graphs}, open(spec, "w"))
        r = subprocess.run(["node", TIMER, spec], cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"onnxruntime-node timing failed:\n{r.stderr[-3000:]}")
        for t in json.loads(r.stdout.strip().splitlines()[-1]):
            b, k, n, kind = where[t["file"]]
            rows_out.append({"batch": b, "k": k, "n": n, "runtime": "onnxruntime-node", "precision": kind,
                             "threads": t["threads"], "ms": round(t["ms"], 4)})
    for b in batches:
        for (k, n) in products:
            for th in threads:
                for prec in (["fp32", "bf16"] if bf16 else ["fp32"]):
                    ms = time_torch(k, n, b * canvas, th, prec == "bf16", seconds)
                    rows_out.append({"batch": b, "k": k, "n": n, "runtime": "torch", "precision": prec,
                                     "threads": th, "ms": round(ms, 4)})
    return {"bundle": man["id"], "version": man.get("version"), "canvas": canvas,
            "products": [{"k": k, "n": n, "count": c} for (k, n), c in products.items()],
            "timings": rows_out, "per_step": per_step(rows_out, products, batches, canvas),
            "machine": {"cpu": cpu_name(), "torch": torch.__version__, "python": platform.python_version(),
                        "onnxruntime_node": ort_node_version()}}


def per_step(rows: List[dict], products: Dict[Tuple[int, int], int], batches: List[int], canvas: int) -> List[dict]:
    """Per batch and (runtime, precision): sum of count x ms over the products, at the faster thread count."""
    out = []
    for b in batches:
        for rt, prec in sorted({(r["runtime"], r["precision"]) for r in rows}):
            best = None
            for th in sorted({r["threads"] for r in rows}):
                sel = {(r["k"], r["n"]): r["ms"] for r in rows
                       if r["batch"] == b and r["runtime"] == rt and r["precision"] == prec and r["threads"] == th}
                if len(sel) != len(products):
                    continue
                total = sum(c * sel[kn] for kn, c in products.items())
                macs = sum(c * b * canvas * k * n for (k, n), c in products.items())
                if best is None or total < best["ms"]:
                    best = {"batch": b, "runtime": rt, "precision": prec, "threads": th, "ms": round(total, 3),
                            "gops": round(2 * macs / total / 1e6, 1)}
            if best:
                out.append(best)
    return out


def ort_node_version() -> str:
    try:
        return json.load(open(os.path.join(ROOT, "node_modules", "onnxruntime-node", "package.json")))["version"]
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", default=os.path.join(ROOT, "models", "e2e-default"))
    ap.add_argument("--batches", default="8,64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seconds", type=float, default=1.0, help="timing per product and setting")
    ap.add_argument("--no-bf16", action="store_true", help="skip PyTorch's bf16 autocast")
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    batches = [int(x) for x in a.batches.split(",")]
    res = run(a.bundle, batches, [int(x) for x in a.threads.split(",")], a.seconds, not a.no_bf16)
    print(f"{res['bundle']} {res['version']}: {sum(p['count'] for p in res['products'])} int8 products per step; "
          f"{res['machine']['cpu']}, torch {res['machine']['torch']}, onnxruntime-node {res['machine']['onnxruntime_node']}")
    print("batch | runtime | precision | threads | ms per step (products only) | GOPS")
    for r in res["per_step"]:
        print(f"{r['batch']} | {r['runtime']} | {r['precision']} | {r['threads']} | {r['ms']:.3f} | {r['gops']}")
    for b in batches:
        eng = next(r for r in res["per_step"] if r["batch"] == b and r["runtime"] == "onnxruntime-node" and r["precision"] == "int8")
        ref = min((r for r in res["per_step"] if r["batch"] == b and r["runtime"] == "torch"), key=lambda r: r["ms"])
        print(f"batch {b}: torch's best ({ref['precision']}, {ref['threads']} threads) / engine int8 = "
              f"{ref['ms'] / eng['ms']:.2f}x on the products alone")
    if a.out:
        json.dump(res, open(a.out, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
