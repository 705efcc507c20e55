"""Guidance classifiers for masked (absorbing-state) diffusion bundles (issue 16).

A masked model has no x_t to move, so the classifiers read token ids: the text segment of a partly masked canvas
(the mask id wherever the sampler has not committed a token yet). Their exported graphs take those ids and return
log p(target | ids) and its gradient with respect to the one-hot token inputs:

    grad[b, i, v] = d log p / d onehot[b, i, v] = (d log p / d e[b, i]) . E[v]      (e = onehot @ E, the input embedding)

so that grad[b, i, v] - grad[b, i, current token] is the first-order (Taylor) estimate of how putting token v at text
position i changes log p (Nisonoff et al. 2024; Schiff et al. 2024). The engine adds weight x that estimate to the
denoiser's logits at every masked text position before it proposes tokens (src-main/engine/families/masked/guidance.ts).

One trunk (token embedding + position embedding + transformer blocks, no timestep: the masks show how far sampling
is) with the same five heads as the continuous classifiers (model.py), trained on canvases masked the two ways the
sampler leaves them: independently at a random rate, or left to right (a committed prefix, a partly filled block,
masks after it), as semi-autoregressive blocks do.

    /usr/bin/python3 -m training.guidance.masked --bundle models/e2e-masked --budget-min 15
    /usr/bin/python3 -m training.guidance.masked --bundle <masked bundle> --tiny      (CI smoke: seconds)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from functorch import grad as fgrad
from functorch import make_fx
from torch._decomp import get_decompositions

from training.dlm_train.bundle import add_files_and_rehash, read_manifest, set_card_section, write_manifest
from training.guidance.bundle import take_scorer
from training.guidance.logp_graphs import add_logp_graphs
from training.dlm_train.paths import E2E_DATA
from training.dlm_train.train import pick_autocast, time_precisions

from . import lexicon
from .export import DECOMPOSE, MASKED as WITH_MASK, _rewrite, target_shape
from .labels import POS_LABELS, SENTIMENT_LABELS, SPAN_LABELS, GuidanceData, bundle_guidance_data
from .model import CONTROLS, ClassifierConfig, GuidanceClassifier, logp_from_logits
from .ort import run_onnx
from .joint import _split as split_inputs
from .train import TimedSteps, _batch, joint_update

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRAD_TOL = 1e-4
EVAL_RATES = [0.0, 0.25, 0.5, 0.75, 1.0]
CARD_HEADING = "## Guidance classifiers (masked canvases)"


@dataclass
class MaskedClassifierConfig(ClassifierConfig):
    vocab_size: int = 0         # token ids the trunk embeds: the tokenizer's plus the mask id
    mask_id: int = -1
    block: int = 8              # the left-to-right masking's partly filled block (the sampler's block length)

    def to_json(self) -> dict:
        return asdict(self)


class MaskedGuidanceClassifier(GuidanceClassifier):
    """The continuous classifier's heads on a trunk over token ids (the embedding replaces in_proj and the timestep)."""

    def __init__(self, cfg: MaskedClassifierConfig):
        with warnings.catch_warnings():  # the parent's in_proj (input dim d = 0 here) is built and then dropped
            warnings.simplefilter("ignore", UserWarning)
            super().__init__(cfg)
        del self.in_proj, self.time_mlp
        if cfg.vocab_size <= cfg.mask_id or cfg.mask_id < 0:
            raise ValueError(f"vocab_size {cfg.vocab_size} must cover mask_id {cfg.mask_id}")
        self.tok = nn.Embedding(cfg.vocab_size, cfg.hidden)
        nn.init.normal_(self.tok.weight, std=0.02)

    def trunk_from(self, e: torch.Tensor) -> torch.Tensor:
        """Trunk output from the embedded text ids e [B, Lt, H]."""
        h = e + self.pos_emb.unsqueeze(0)
        for blk in self.blocks:
            h = blk(h)
        return self.ln_out(h)

    def trunk(self, ids_text: torch.Tensor, t: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.trunk_from(self.tok(ids_text))


# ---- masking -------------------------------------------------------------------------------------------------------

def mask_canvases(ids: torch.Tensor, cfg: MaskedClassifierConfig, g: torch.Generator) -> torch.Tensor:
    """Half the rows masked independently at a rate u ~ U(0, 1); half left to right: positions before a cut c kept,
    the block before c masked at a random rate, everything from c on masked."""
    B, L = ids.shape
    r = torch.rand(B, 1, generator=g)
    iid = torch.rand(B, L, generator=g) < r
    cut = torch.randint(0, L + 1, (B, 1), generator=g)
    pos = torch.arange(L).unsqueeze(0)
    in_block = (pos < cut) & (pos >= cut - cfg.block)
    ltr = (pos >= cut) | (in_block & (torch.rand(B, L, generator=g) < torch.rand(B, 1, generator=g)))
    which = torch.rand(B, 1, generator=g) < 0.5
    m = torch.where(which, iid, ltr)
    return torch.where(m, torch.full_like(ids, cfg.mask_id), ids)


def losses(model: MaskedGuidanceClassifier, ids: torch.Tensor, b: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    h = model.trunk(ids)
    out = {}
    for c in CONTROLS:
        lg = model.head(c, h)
        out[c] = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), b[c].reshape(-1), ignore_index=-1)
    return out


def train(cfg: MaskedClassifierConfig, data: GuidanceData, budget_s: float, batch: int = 64, lr: float = 2e-3,
          seed: int = 0, max_steps: Optional[int] = None, log=print, precision: str = "fp32") -> Dict:
    """precision as the denoiser's train.precision: 'fp32', 'bf16' (autocast) or 'auto' (bf16 where the CPU has
    AVX512-BF16/AMX and a timed batch says it is faster)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MaskedGuidanceClassifier(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    n = len(data.ids)
    hist = []
    model.train()
    first = _batch(data, np.arange(min(n, batch)), cfg.text_start, cfg.text_len)
    measured = {}

    def measure():
        ids = mask_canvases(first["ids"], cfg, torch.Generator().manual_seed(seed))
        loss = lambda x: {"loss": sum(losses(model, x, first).values())}  # noqa: E731
        measured.update(time_precisions(loss, list(model.parameters()), ids, torch.device("cpu")))
        return measured
    autocast = pick_autocast(precision, torch.device("cpu"), measure)
    if measured:
        log("masked classifiers: s per batch " + ", ".join(f"{k} {v:.3f}" for k, v in measured.items()))
    steps = TimedSteps(opt, lr, budget_s, max_steps)
    for _ in steps:
        b = _batch(data, rng.integers(0, n, size=batch), cfg.text_start, cfg.text_len)
        with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
            ls = losses(model, mask_canvases(b["ids"], cfg, g), b)
        joint_update(model, opt, {c: v.float() for c, v in ls.items()}, steps, hist, log, "masked classifiers")
    model.eval()
    return {"model": model, "steps": steps.step, "seconds": round(steps.seconds, 1), "history": hist, "batch": batch,
            "precision": "bf16" if autocast is not None else "fp32"}


@torch.no_grad()
def evaluate(model: MaskedGuidanceClassifier, data: GuidanceData, rates: Sequence[float] = EVAL_RATES,
             batch: int = 256, seed: int = 1234) -> Dict[str, Dict[str, float]]:
    """Dev accuracy per control and masked share (each text position masked independently with that probability;
    1.0 = all masked, where only priors are left). pos/spans per text token, attribute per (text, field) whose value
    was seen in training, length exact, sentiment 3-way."""
    cfg = model.cfg
    Lt = cfg.text_len
    res: Dict[str, Dict[str, float]] = {c: {} for c in CONTROLS}
    n = len(data.ids)
    for rate in rates:
        g = torch.Generator().manual_seed(seed)
        hit = {c: 0 for c in CONTROLS}
        tot = {c: 0 for c in CONTROLS}
        for s in range(0, n, batch):
            b = _batch(data, np.arange(s, min(n, s + batch)), cfg.text_start, Lt)
            ids = b["ids"]
            m = torch.rand(ids.shape, generator=g) < rate
            h = model.trunk(torch.where(m, torch.full_like(ids, cfg.mask_id), ids))
            intext = torch.arange(Lt)[None, :] < b["length"][:, None]
            for c in CONTROLS:
                pred = model.head(c, h).argmax(-1)
                y = b[c]
                keep = intext if c in ("pos", "spans") else (y >= 0 if c == "attribute" else torch.ones_like(y, dtype=torch.bool))
                hit[c] += int(((pred == y) & keep).sum())
                tot[c] += int(keep.sum())
        for c in CONTROLS:
            res[c][str(rate)] = round(hit[c] / max(1, tot[c]), 4)
    return res


# ---- gradient graphs -----------------------------------------------------------------------------------------------

def input_names(controls: Sequence[str]) -> List[str]:
    names = ["ids"]
    for c in controls:
        names.append(f"target_{c}" if len(controls) > 1 else "target")
        if c in WITH_MASK:
            names.append(f"mask_{c}" if len(controls) > 1 else "mask")
    return names


def joint_logp_from(model: MaskedGuidanceClassifier, controls: Sequence[str], e: torch.Tensor, *tm) -> torch.Tensor:
    h = model.trunk_from(e)
    return torch.stack([logp_from_logits(c, model.head(c, h), target, mask)
                        for c, target, mask, _ in split_inputs(controls, tm)], dim=1)


def grad_fn(model: MaskedGuidanceClassifier, controls: Sequence[str]):
    """ids [B, N] (+ targets and masks) -> logp [B, C] (C = 1: [B]) and grad [B, Lt, V] over the text segment."""
    c = model.cfg
    a, b = c.text_start, c.text_start + c.text_len

    def lp_e(e, *tm):
        lp = joint_logp_from(model, controls, e, *tm)
        return lp.sum(), lp

    g = fgrad(lp_e, argnums=0, has_aux=True)

    def fn(ids, *tm):
        e = model.tok(ids[:, a:b])
        ge, lp = g(e, *tm)
        grad = torch.matmul(ge, model.tok.weight.t())
        return (lp if len(controls) > 1 else lp[:, 0]), grad

    return fn


def example_inputs(model: MaskedGuidanceClassifier, controls: Sequence[str], B: int, seed: int = 0) -> List[torch.Tensor]:
    """Partly masked random canvases, then per control a random soft target (scaled, as the engine folds weights in)
    and a 0/1 mask."""
    gen = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    ids = torch.randint(0, cfg.mask_id, (B, cfg.canvas_len), generator=gen)
    ids = torch.where(torch.rand(B, cfg.canvas_len, generator=gen) < 0.5, torch.full_like(ids, cfg.mask_id), ids)
    ins = [ids]
    for c in controls:
        tshape, mshape = target_shape(model, c, B)
        ins.append(torch.softmax(torch.randn(*tshape, generator=gen) * 3, dim=-1) * (0.5 + torch.rand(1, generator=gen)))
        if mshape:
            ins.append((torch.rand(*mshape, generator=gen) < 0.6).float())
    return ins


def export_graph(model: MaskedGuidanceClassifier, controls: Sequence[str], B: int, path: str, opset: int = 14) -> None:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    ex = tuple(example_inputs(model, controls, B))
    gm = _rewrite(make_fx(grad_fn(model, controls), decomposition_table=get_decompositions(DECOMPOSE))(*ex))
    with torch.no_grad():
        torch.onnx.export(gm, ex, path, input_names=input_names(controls), output_names=["logp", "grad"],
                          opset_version=opset, do_constant_folding=True)


def reference(model: MaskedGuidanceClassifier, controls: Sequence[str], ids: torch.Tensor, *tm) -> Tuple[torch.Tensor, torch.Tensor]:
    """logp and d sum(logp) / d onehot by plain autograd through an explicit one-hot input (the exported graph's check)."""
    c = model.cfg
    oh = F.one_hot(ids[:, c.text_start:c.text_start + c.text_len], c.vocab_size).float().requires_grad_(True)
    lp = joint_logp_from(model, controls, torch.matmul(oh, model.tok.weight), *tm)
    (g,) = torch.autograd.grad(lp.sum(), oh)
    return (lp if len(controls) > 1 else lp[:, 0]).detach(), g


def check_graph(model: MaskedGuidanceClassifier, controls: Sequence[str], path: str, B: int, seed: int) -> Dict:
    ins = example_inputs(model, controls, B, seed)
    lp, g = reference(model, controls, *ins)
    out = run_onnx(path, {n: v.numpy() for n, v in zip(input_names(controls), ins)})
    return {"grad_max_abs_err": float(np.abs(out["grad"] - g.numpy()).max()),
            "logp_max_abs_err": float(np.abs(out["logp"] - lp.numpy()).max()),
            "grad_max_abs": float(g.abs().max()), "inputs": ins, "logp": lp, "grad": g}


def _shape(s: Sequence[int]) -> str:
    return "float32[B," + ",".join(str(x) for x in s[1:]) + "]"


def export_all(model: MaskedGuidanceClassifier, bundle_dir: str, value_labels: Dict[str, List[str]],
               batch_sizes: Sequence[int], run: Dict, acc: Dict, log=print,
               control_batch_sizes: Sequence[int] = (1,)) -> Tuple[List[dict], dict, List[str]]:
    """Per-control graphs classifiers/<control>.b<B>.onnx (control_batch_sizes: the engine uses them only with
    DLM_GUIDANCE_JOINT=0, so one size keeps the bundle small; none: the entries describe the heads only and the joint
    graph serves every control) and the all-controls graph classifiers/joint.b<B>.onnx
    (batch_sizes), each checked against autograd in onnxruntime-node; returns the manifest entries and the files."""
    cfg = model.cfg
    os.makedirs(os.path.join(bundle_dir, "classifiers"), exist_ok=True)
    N, Lt, V = cfg.canvas_len, cfg.text_len, cfg.vocab_size
    grad_spec = f"float32[B,{Lt},{V}]"
    model_info = {"shared_trunk": "one trunk over token ids trained jointly for all five controls; one head per graph",
                  "config": cfg.to_json(), "steps": run["steps"], "batch": run["batch"], "train_seconds": run["seconds"],
                  "precision": run.get("precision", "fp32"), "train_examples": run["train_examples"], "dev_examples": run["dev_examples"]}
    files_all: List[str] = []

    def graphs(controls: Sequence[str], stem: str, sizes: Sequence[int]) -> Tuple[Dict[str, str], float, float]:
        files, gerr, lerr = {}, 0.0, 0.0
        for B in sizes:
            rel = f"classifiers/{stem}.b{B}.onnx"
            export_graph(model, controls, B, os.path.join(bundle_dir, rel))
            chk = check_graph(model, controls, os.path.join(bundle_dir, rel), B, seed=300 + B)
            if chk["grad_max_abs_err"] > GRAD_TOL * max(1.0, chk["grad_max_abs"]):
                raise RuntimeError(f"{rel}: exported gradient differs from autograd by {chk['grad_max_abs_err']:.3g}")
            files[str(B)] = rel
            files_all.append(rel)
            gerr, lerr = max(gerr, chk["grad_max_abs_err"]), max(lerr, chk["logp_max_abs_err"])
        return files, gerr, lerr

    entries = []
    for c in CONTROLS:
        files, gerr, lerr = graphs([c], c, control_batch_sizes)
        tshape, mshape = target_shape(model, c, 0)
        entry = {"control": c, "files": files, "batch_sizes": sorted(control_batch_sizes), "segment": "text",
                 "inputs": {"ids": f"int64[B,{N}]", "target": _shape(tshape), **({"mask": _shape(mshape)} if mshape else {})},
                 "outputs": {"logp": "float32[B]", "grad": grad_spec}}
        if c == "pos":
            entry["labels"] = POS_LABELS
        elif c == "spans":
            entry["labels"] = SPAN_LABELS
        elif c == "attribute":
            entry.update({"labels": ["not mentioned"], "fields": cfg.fields,
                          "value_labels": {f: value_labels[f] for f in cfg.fields}, "classes_per_field": cfg.kmax})
        elif c == "length":
            entry["labels"] = [str(i) for i in range(Lt)]
        else:
            entry["labels"] = SENTIMENT_LABELS
        entry["metrics"] = {"dev_accuracy_by_masked_share": acc[c],
                            "dev_accuracy_key": "share of text positions masked independently (1.0: all masked)",
                            **({"grad_check_max_abs_err": gerr, "logp_check_max_abs_err": lerr} if files else {})}
        entry["model"] = model_info
        entries.append(entry)
        log(f"exported {c}: {files}, grad max abs err {gerr:.2e}")
    files, gerr, lerr = graphs(CONTROLS, "joint", batch_sizes)
    inputs = {"ids": f"int64[B,{N}]"}
    for c in CONTROLS:
        tshape, mshape = target_shape(model, c, 0)
        inputs[f"target_{c}"] = _shape(tshape)
        if mshape:
            inputs[f"mask_{c}"] = _shape(mshape)
    joint = {"controls": list(CONTROLS), "files": files, "batch_sizes": sorted(batch_sizes), "segment": "text",
             "inputs": inputs, "outputs": {"logp": f"float32[B,{len(CONTROLS)}]", "grad": grad_spec},
             "gradient": "one-hot", "metrics": {"grad_check_max_abs_err": gerr, "logp_check_max_abs_err": lerr}}
    log(f"exported joint: {files}, grad max abs err {gerr:.2e}")
    return entries, joint, files_all


def card_lines(entries: List[dict], joint: dict, tiny: bool) -> List[str]:
    m0 = entries[0]["model"]
    rates = [str(r) for r in EVAL_RATES]
    lines = [
        "Classifier guidance for this masked model (issue 16): one small transformer trunk over the token ids of the "
        f"text segment (hidden {m0['config']['hidden']}, layers {m0['config']['layers']}, no timestep) with five heads "
        "(parts of speech, phrase spans, record values, length, sentiment), trained jointly on training texts masked "
        "either independently at a uniform random rate or left to right (a kept prefix, a partly masked block of "
        f"{m0['config']['block']}, masks after it) as the semi-autoregressive sampler leaves them "
        f"({m0['steps']} steps of batch {m0['batch']}, {m0['train_seconds']:.0f} s on {platform.machine()} CPU in "
        f"{m0.get('precision', 'fp32')}, "
        f"{m0['train_examples']} training texts; labels as for the continuous classifiers, training/labels/). "
        "Each graph returns log p(target | ids) and its gradient with respect to the one-hot token inputs "
        f"[B, {m0['config']['text_len']}, {m0['config']['vocab_size']}]; the engine adds weight x (g[i, v] - g[i, mask]) "
        "to the denoiser's logits at masked text positions. `classifiers/joint.b<B>.onnx` runs the trunk once for all "
        f"controls (batch sizes {', '.join(joint['files'])})"
        + ("" if entries[0]["files"] else "; it is the only graph: the per-control entries describe the heads")
        + ". Checked against PyTorch autograd in onnxruntime-node: "
        f"max abs gradient error {joint['metrics']['grad_check_max_abs_err']:.1e}. Made by "
        "`python -m training.guidance.masked`.",
        "",
        f"Dev accuracy ({m0['dev_examples']} texts) by the share of text positions masked:",
        "",
        "| control | " + " | ".join(rates) + " |",
        "| --- | " + " | ".join("---" for _ in rates) + " |",
    ]
    for e in entries:
        a = e["metrics"]["dev_accuracy_by_masked_share"]
        lines.append(f"| {e['control']} | " + " | ".join(f"{a[r]:.3f}" for r in rates) + " |")
    lines.append("")
    if tiny:
        lines += ["(Tiny smoke-test configuration: these numbers are not meaningful.)", ""]
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="a masked-diffusion bundle (kind masked-diffusion)")
    ap.add_argument("--data", default=E2E_DATA, help="folder with trainset.csv and devset.csv")
    ap.add_argument("--labels", default=os.path.join(ROOT, "training", "labels"))
    ap.add_argument("--budget-min", type=float, default=15.0)
    ap.add_argument("--max-steps", type=int, default=0, help="also stop after this many steps (0: the budget only); "
                    "the learning rate then decays over whichever bound is nearer, so a busy machine takes longer "
                    "instead of training less")
    ap.add_argument("--batch-sizes", default="1,8", help="batch sizes of the all-controls graph")
    ap.add_argument("--control-batch-sizes", default="1", help="batch sizes of the per-control graphs; none: no "
                    "per-control graphs (the joint graph serves every control, and the bundle is smaller)")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                    help="bf16 autocast where the CPU has AVX512-BF16/AMX and it times faster (auto), always, or never")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default="", help="also save the PyTorch weights here (a .pt file)")
    ap.add_argument("--ckpt", default="", help="export this saved .pt instead of training")
    ap.add_argument("--tiny", action="store_true", help="CI smoke: a tiny trunk, few examples and steps")
    ap.add_argument("--scorer-from", default="", help="also take the fluency scorer (scorer.onnx) of this bundle, which "
                    "must have the same vocabulary (e.g. models/e2e-default: the scorer is a causal LM over the texts)")
    ap.add_argument("--scorer-only", action="store_true", help="with --scorer-from: only take the scorer")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t_start = time.time()
    with open(os.path.join(a.bundle, "manifest.json"), encoding="utf-8") as f:
        man = json.load(f)
    if man.get("kind") != "masked-diffusion":
        raise ValueError(f"{a.bundle}/manifest.json: kind {man.get('kind')!r}; this trains classifiers for masked-diffusion "
                         "bundles (continuous ones: training.guidance.train_all)")
    if a.scorer_from:
        take_scorer(a.bundle, man, a.scorer_from)
        if a.scorer_only:
            return 0
    elif a.scorer_only:
        ap.error("--scorer-only needs --scorer-from")
    if not (man.get("record_schema") or {}).get("fields"):
        raise ValueError(f"{a.bundle}/manifest.json: record_schema.fields is empty; the attribute classifier needs it")
    lim_tr, lim_dev = (600, 200) if a.tiny else (None, None)
    gd = bundle_guidance_data(a.bundle, man, a.data, a.labels, lim_tr, lim_dev)
    tok, layout, value_labels, tr, dv = gd.tok, gd.layout, gd.value_labels, gd.train, gd.dev
    print(f"data: train {len(tr.ids)}, dev {len(dv.ids)}", flush=True)
    fields = list(value_labels)
    mask_id = int(man["mask"]["id"])
    block = int((man.get("sampler_defaults") or {}).get("block_length") or 8)
    cfg = MaskedClassifierConfig(d=0, canvas_len=layout.length, text_start=layout.text_start, text_len=layout.text_len,
                                 n_pos=len(POS_LABELS), n_spans=len(SPAN_LABELS), fields=fields,
                                 n_values=[len(value_labels[f]) for f in fields], hidden=a.hidden, layers=a.layers,
                                 vocab_size=max(len(tok), mask_id + 1), mask_id=mask_id, block=block)
    if a.tiny:
        cfg.hidden, cfg.layers, cfg.heads = 32, 1, 2
    if a.ckpt:
        ck = torch.load(a.ckpt, map_location="cpu")
        cfg = MaskedClassifierConfig(**ck["config"])
        if cfg.mask_id != mask_id or ck.get("value_labels") != value_labels:
            raise ValueError(f"{a.ckpt}: trained for another mask id or record schema than {a.bundle}")
        model = MaskedGuidanceClassifier(cfg)
        model.load_state_dict(ck["state_dict"])
        model.eval()
        run = ck["run"]
    else:
        out = train(cfg, tr, a.budget_min * 60, lr=a.lr, seed=a.seed, max_steps=30 if a.tiny else (a.max_steps or None),
                    precision=a.precision)
        model = out["model"]
        run = {k: v for k, v in out.items() if k != "model"}
    run.update({"train_examples": int(len(tr.ids)), "dev_examples": int(len(dv.ids))})
    if a.save:
        torch.save({"config": cfg.to_json(), "state_dict": model.state_dict(), "value_labels": value_labels, "run": run}, a.save)
    acc = evaluate(model, dv)
    for c in CONTROLS:
        print(f"  {c:10s} " + " ".join(f"{k}:{v:.3f}" for k, v in acc[c].items()), flush=True)
    # graphs of an earlier export leave the bundle (and its file list) first
    old = read_manifest(a.bundle)
    for f in old.get("files", []):
        if f["path"].startswith("classifiers/") and os.path.exists(os.path.join(a.bundle, f["path"])):
            os.remove(os.path.join(a.bundle, f["path"]))
    old["files"] = [f for f in old.get("files", []) if not f["path"].startswith("classifiers/")]
    old["classifiers"], old["joint_guidance"], old["lexicons"] = [], None, []
    write_manifest(a.bundle, old)
    parse_sizes = lambda s: [] if s.strip() in ("", "none") else sorted({int(x) for x in s.split(",")})  # noqa: E731
    entries, joint, files = export_all(model, a.bundle, value_labels, parse_sizes(a.batch_sizes), run, acc,
                                       control_batch_sizes=parse_sizes(a.control_batch_sizes))
    set_card_section(a.bundle, CARD_HEADING, card_lines(entries, joint, a.tiny))
    add_files_and_rehash(a.bundle, files + ["DATA_CARD.md"], {"classifiers": entries, "joint_guidance": joint})
    # the token label lexicons live beside the graphs (classifiers/), which were just replaced: written anew
    lexicon.attach(a.bundle, read_manifest(a.bundle), tr, dv, layout, len(tok))
    files += [e["file"] for e in read_manifest(a.bundle)["lexicons"]]
    # forward-only copies of the joint graph for exact top-k re-scoring
    files += list(add_logp_graphs(a.bundle)["joint_guidance"]["logp"]["files"].values())
    sizes = sum(os.path.getsize(os.path.join(a.bundle, p)) for p in files)
    print(f"done in {time.time() - t_start:.0f} s; {len(files)} graphs, {sizes / 1e6:.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
