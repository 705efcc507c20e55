"""Read a model bundle (docs/ARCHITECTURE.md, "Model bundle") and update its manifest file list."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from training.dlm_train.bundle import add_files_and_rehash, set_card_section
from training.dlm_train.data import CanvasLayout
from training.dlm_train.tokenizer import Tokenizer


@dataclass
class Bundle:
    path: str
    manifest: dict
    tok: Tokenizer
    emb: np.ndarray          # float32 [V, d]
    layout: CanvasLayout
    value_labels: Dict[str, List[str]]


def _need(obj: dict, key: str, where: str):
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    return obj[key]


def load_bundle(path: str) -> Bundle:
    mpath = os.path.join(path, "manifest.json")
    if not os.path.exists(mpath):
        raise FileNotFoundError(f"{mpath}: no manifest (is {path} a model bundle?)")
    with open(mpath, encoding="utf-8") as f:
        man = json.load(f)
    tok = Tokenizer.load(os.path.join(path, _need(_need(man, "tokenizer", mpath), "vocab", f"{mpath}: tokenizer")))
    emb_m = _need(man, "embedding", mpath)
    d = int(_need(emb_m, "dim", f"{mpath}: embedding"))
    emb = np.fromfile(os.path.join(path, _need(emb_m, "file", f"{mpath}: embedding")), dtype="<f4")
    if emb.size != len(tok) * d:
        raise ValueError(f"{path}: embeddings hold {emb.size} floats, expected vocab {len(tok)} x dim {d}")
    canvas = _need(man, "canvas", mpath)
    segs = {s["name"]: s for s in _need(canvas, "segments", f"{mpath}: canvas")}
    if "text" not in segs:
        raise ValueError(f"{mpath}: canvas.segments has no 'text' segment")
    rec_len = segs["record"]["length"] if "record" in segs else 0
    layout = CanvasLayout(int(canvas["length"]), int(rec_len))
    if layout.text_start != segs["text"]["start"] or layout.text_len != segs["text"]["length"]:
        raise ValueError(f"{mpath}: canvas.segments text segment does not follow the record + sep layout")
    fields = ((man.get("record_schema") or {}).get("fields")) or {}
    return Bundle(path, man, tok, emb.reshape(len(tok), d).copy(), layout, {k: list(v) for k, v in fields.items()})


def take_scorer(bundle: str, man: dict, src: str) -> None:
    """Copy another bundle's fluency scorer (a causal LM over text tokens) when both bundles share the vocabulary."""
    with open(os.path.join(src, "manifest.json"), encoding="utf-8") as f:
        sman = json.load(f)
    if not sman.get("scorer"):
        raise ValueError(f"{src}/manifest.json: no scorer to take")
    mine, theirs = os.path.join(bundle, man["tokenizer"]["vocab"]), os.path.join(src, sman["tokenizer"]["vocab"])
    with open(mine, "rb") as f1, open(theirs, "rb") as f2:
        if f1.read() != f2.read():
            raise ValueError(f"{src}: {theirs} differs from {mine}; a scorer only fits its own vocabulary")
    shutil.copyfile(os.path.join(src, sman["scorer"]["file"]), os.path.join(bundle, "scorer.onnx"))
    entry = {**sman["scorer"], "file": "scorer.onnx", "source": f"the fluency scorer of bundle {sman.get('id')} (same vocabulary)"}
    set_card_section(bundle, "## Fluency scorer", [
        f"`scorer.onnx` is the fluency scorer of bundle `{sman.get('id')}` (the same vocabulary): a causal transformer "
        "LM over the E2E training texts, independent of the diffusion model, that the engine and `dlm-studio eval` use "
        f"to report each output's perplexity (dev perplexity {entry.get('metrics', {}).get('dev_perplexity')} per token).", ""])
    add_files_and_rehash(bundle, ["scorer.onnx", "DATA_CARD.md"], {"scorer": entry})
    print(f"{bundle}: scorer.onnx taken from {src}", flush=True)
