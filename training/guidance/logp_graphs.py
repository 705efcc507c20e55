"""Forward-only copies of a masked bundle's joint guidance graphs, for exact top-k re-scoring.

Exact re-scoring (src-main/engine/families/masked/guidance.ts; docs/engine.md, "Exact top-k re-scoring") writes each
top-k candidate into the canvas and reads log p(targets | canvas) from the classifiers: many canvases per step, and
no gradient wanted. A joint graph returns both; this cuts the part that computes `logp` out of it with
onnx.utils.extract_model (the same nodes and weights, so the same numbers, checked), which runs in about 40% of the
gradient graph's time on the e2e-masked classifiers. The manifest lists them as joint_guidance.logp:
{"files": {"<B>": "classifiers/joint.logp.b<B>.onnx"}, "batch_sizes": [B]}.

    python -m training.guidance.logp_graphs --bundle models/e2e-masked            # the joint graphs' largest batch
    python -m training.guidance.logp_graphs --bundle models/e2e-masked --batch-sizes 1,8
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import onnx
from onnx import utils as onnx_utils

from training.dlm_train.bundle import add_files_and_rehash, read_manifest
from training.guidance.ort import run_onnx

# extraction copies nodes and weights; onnxruntime may fuse the shared part differently: the two agree to float
# rounding, relative to the size of log p
LOGP_TOL = 1e-5


def _inputs(graph_path: str, B: int, seed: int) -> Dict[str, np.ndarray]:
    """Random canvases and targets for the graph's inputs (ids in the vocabulary the gradient output spans)."""
    m = onnx.load(graph_path, load_external_data=False)
    rng = np.random.default_rng(seed)
    grad = next(o for o in m.graph.output if o.name == "grad")
    V = grad.type.tensor_type.shape.dim[2].dim_value
    feeds: Dict[str, np.ndarray] = {}
    for i in m.graph.input:
        dims = [d.dim_value if d.dim_value > 0 else B for d in i.type.tensor_type.shape.dim]
        if i.name == "ids":
            feeds[i.name] = rng.integers(0, V, size=dims, dtype=np.int64)
        elif i.name.startswith("mask_"):
            feeds[i.name] = (rng.random(dims) < 0.5).astype(np.float32)
        else:
            feeds[i.name] = rng.random(dims).astype(np.float32)
    return feeds


def _run(path: str, feeds: Dict[str, np.ndarray]) -> np.ndarray:
    """log p from the graph in onnxruntime-node, the engine's runtime."""
    return run_onnx(path, feeds)["logp"]


def add_logp_graphs(bundle_dir: str, batch_sizes: Optional[Sequence[int]] = None,
                    log: Callable[[str], None] = print) -> dict:
    """Cut classifiers/joint.logp.b<B>.onnx from the bundle's joint gradient graph of batch B (default: its largest
    batch size), check that it returns the same log p, and list it in the manifest (joint_guidance.logp)."""
    man = read_manifest(bundle_dir)
    j = man.get("joint_guidance")
    if not j:
        raise ValueError(f"{bundle_dir}/manifest.json: no joint_guidance; exact re-scoring graphs are cut from it")
    sizes = sorted(set(batch_sizes or [max(j["batch_sizes"])]))
    missing = [B for B in sizes if str(B) not in j["files"]]
    if missing:
        raise ValueError(f"{bundle_dir}/manifest.json: joint_guidance.files has no graph for batch size "
                         f"{', '.join(map(str, missing))} (it has {', '.join(sorted(j['files']))})")
    files: Dict[str, str] = {}
    for B in sizes:
        src = j["files"][str(B)]
        rel = f"classifiers/joint.logp.b{B}.onnx"
        src_path, dst_path = os.path.join(bundle_dir, src), os.path.join(bundle_dir, rel)
        names = [i.name for i in onnx.load(src_path, load_external_data=False).graph.input]
        onnx_utils.extract_model(src_path, dst_path, names, ["logp"])
        feeds = _inputs(src_path, B, seed=B)
        ref = _run(src_path, feeds)
        err = float(np.abs(_run(dst_path, feeds) - ref).max())
        if err > LOGP_TOL * max(1.0, float(np.abs(ref).max())):
            os.remove(dst_path)
            raise RuntimeError(f"{rel}: log p differs from {src}'s by {err:.3g}")
        files[str(B)] = rel
        log(f"{rel}: log p of {src} without the gradient ({os.path.getsize(dst_path) / 1e6:.1f} MB, max abs diff {err:.1e})")
    j = {**j, "logp": {"files": files, "batch_sizes": sizes}}
    return add_files_and_rehash(bundle_dir, list(files.values()), {"joint_guidance": j})


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="a masked-diffusion bundle with joint_guidance")
    ap.add_argument("--batch-sizes", default="", help="which joint graphs to cut (default: the largest batch size)")
    a = ap.parse_args(argv)
    sizes = [int(x) for x in a.batch_sizes.split(",") if x.strip()] or None
    add_logp_graphs(a.bundle, sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
