"""Recover a bundle's guidance classifiers as a classifiers.pt from its exported graphs, so that training can go on
from what the bundle ships (`train_all --classifiers-ckpt <out> --classifiers-continue`) on a machine that has
nothing else. The graphs hold every weight exactly, so a bundle needs no separate PyTorch checkpoint.

Each control's batch-1 graph holds the shared trunk and that control's head as initializers. The gradient graph's
forward half consumes them in the order the model's forward pass reads its parameters, so they are mapped onto the
model in that order, checked by shape, and the result is checked by running each graph in onnxruntime against the
rebuilt model (log p and its input gradient on realistic inputs); a mismatch is an error, never a silent warm start.

    python3 -m training.guidance.from_bundle --bundle models/e2e-default --out runs/cls/classifiers.pt
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import Dict, List

import numpy as np
import torch

from .bundle import load_bundle
from .model import CONTROLS, ClassifierConfig, GuidanceClassifier

# the trunk's parameters in the order its forward pass reads them (LayerNorms decompose into Mul weight, Add bias)
_BLOCK = ["ln1.weight", "ln1.bias", "qkv.weight", "qkv.bias", "proj.weight", "proj.bias", "ln2.weight", "ln2.bias",
          "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"]
_HEADS = {
    "pos": ["head_pos.weight", "head_pos.bias"],
    "spans": ["head_spans.weight", "head_spans.bias"],
    "attribute": ["attr_pos.weight", "attr_pos.bias", "attr_b", "attr_class_bias"],
    "length": ["len_pos.weight", "len_pos.bias", "len_b"],
    "sentiment": ["sent_pos.weight", "sent_pos.bias", "sent_b"],
}


def _trunk_order(layers: int) -> List[str]:
    names = ["in_proj.0.weight", "in_proj.0.bias", "in_proj.2.weight", "in_proj.2.bias", "pos_emb",
             "time_mlp.0.weight", "time_mlp.0.bias", "time_mlp.2.weight", "time_mlp.2.bias"]
    for i in range(layers):
        names += [f"blocks.{i}.{n}" for n in _BLOCK]
    return names + ["ln_out.weight", "ln_out.bias"]


def _initializers_in_use_order(path: str) -> List[np.ndarray]:
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    inits = {i.name: i for i in m.graph.initializer}
    out, seen = [], set()
    for node in m.graph.node:
        for name in node.input:
            if name in inits and name not in seen:
                seen.add(name)
                out.append(numpy_helper.to_array(inits[name]))
    return out


def _assign(model: GuidanceClassifier, names: List[str], arrays: List[np.ndarray], path: str) -> Dict[str, torch.Tensor]:
    own = model.state_dict()
    if len(arrays) < len(names):
        raise ValueError(f"{path}: {len(arrays)} weights in the graph, the model expects at least {len(names)}")
    sd = {}
    for name, arr in zip(names, arrays):
        want = tuple(own[name].shape)
        if name == "pos_emb":
            arr = arr.reshape(arr.shape[-2:])              # exported as pos_emb.unsqueeze(0)
        if name in ("attr_b", "attr_class_bias"):
            arr = np.pad(arr, ((0, want[0] - arr.shape[0]), (0, 0)))   # the graph keeps the first F rows
        if tuple(arr.shape) != want:
            raise ValueError(f"{path}: {name} has shape {tuple(arr.shape)} in the graph, the model expects {want}")
        sd[name] = torch.from_numpy(np.array(arr, dtype=np.float32))
    return sd


def checkpoint_from_bundle(bundle: str, check: bool = True, log=print) -> dict:
    with open(os.path.join(bundle, "manifest.json")) as f:
        man = json.load(f)
    entries = {e["control"]: e for e in man.get("classifiers") or []}
    missing = [c for c in CONTROLS if c not in entries]
    if missing:
        raise ValueError(f"{bundle}/manifest.json: no classifier for {', '.join(missing)}")
    cfg = ClassifierConfig(**entries["pos"]["model"]["config"])
    model = GuidanceClassifier(cfg)
    trunk = _trunk_order(cfg.layers)
    sd: Dict[str, torch.Tensor] = {}
    for c in CONTROLS:
        path = os.path.join(bundle, entries[c]["files"]["1"])
        part = _assign(model, trunk + _HEADS[c], _initializers_in_use_order(path), path)
        for k, v in part.items():
            if k in sd and k in trunk and not torch.equal(sd[k], v):
                raise ValueError(f"{path}: its trunk differs from the pos graph's ({k}); not one shared trunk")
            sd[k] = v
    # the class-bias buffer is fixed by the value counts; the graph folds it with the head's bias in some exports
    buf = model.state_dict()["attr_class_bias"]
    if not torch.equal(sd["attr_class_bias"], buf):
        if torch.equal(sd["attr_b"], buf):
            sd["attr_b"], sd["attr_class_bias"] = sd["attr_class_bias"], sd["attr_b"]
        else:
            raise ValueError(f"{bundle}: attribute class bias in the graph does not match the record schema's values")
    model.load_state_dict(sd)
    model.eval()
    if check:
        from .train_all import check_graph
        for c in CONTROLS:
            r = check_graph(model, c, os.path.join(bundle, entries[c]["files"]["1"]), 1, seed=7)
            log(f"  {c:10s} graph vs rebuilt model: max |d logp| {r['logp_max_abs_err']:.2e}, "
                f"max |d grad| {r['grad_max_abs_err']:.2e}")
            if r["logp_max_abs_err"] > 1e-3 * max(1.0, r["logp_max_abs"]) or \
                    r["grad_max_abs_err"] > 1e-3 * max(1.0, r["grad_max_abs"]):
                raise ValueError(f"{bundle}: the rebuilt {c} classifier does not reproduce its graph "
                                 f"{entries[c]['files']['1']}")
    b = load_bundle(bundle)
    meta = entries["pos"]["model"]
    return {"config": cfg.to_json(), "state_dict": model.state_dict(),
            "emb_sha256": hashlib.sha256(np.ascontiguousarray(b.emb, dtype="<f4").tobytes()).hexdigest(),
            "value_labels": b.value_labels,
            "run": {"steps": int(meta.get("steps", 0)), "seconds": float(meta.get("train_seconds", 0.0)),
                    "recovered_from": f"{man.get('id')} {man.get('version')} graphs"}}


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--out", required=True, help="where to write classifiers.pt")
    a = ap.parse_args(argv)
    ck = checkpoint_from_bundle(a.bundle)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.save(ck, a.out)
    print(f"{a.out}: {ck['run']['steps']} steps recovered from {a.bundle}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
