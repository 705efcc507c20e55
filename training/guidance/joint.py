"""One gradient graph for every guidance control at once (issue 5: guidance cost).

The five classifiers share one trunk (model.py). Guiding on two controls with two per-control graphs runs the trunk
forward and backward twice per Adagrad step; this graph runs it once and adds the heads' terms:

    logp[b, c] = log p_c(target_c | x_t, t)       (targets may be scaled: log p is linear in them)
    grad       = d/dx_t sum_{b,c} logp[b, c]

A control the engine does not guide gets an all-zero target (and mask), so it adds nothing. The engine folds each
constraint's weight into its target (w * one-hot), which is why the graph has no weight input.

The one-field variant (attribute_slots=1, classifiers/joint1.b<B>.onnx) scores the attribute head for one record
field, picked per sample by a one-hot input select_attribute [B, 1, F], instead of for all F fields: the head's
per-position evidence and its pooling were about a fifth of a batch-4 call (1.73 vs 2.10 ms), and a constraint set mostly
names one field (or none). Its target_attribute / mask_attribute are that slot's: [B, 1, K] / [B, 1].

    /usr/bin/python3 -m training.guidance.joint --bundle models/e2e-default \
        --classifiers-ckpt training/runs/guidance-e2e-default/classifiers.pt
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from functorch import grad as fgrad
from functorch import make_fx
from torch._decomp import get_decompositions

from training.dlm_train.bundle import add_files_and_rehash, read_manifest, set_card_section

from .export import DECOMPOSE, MASKED, _pad_along, _rewrite, target_shape
from .model import CONTROLS, ClassifierConfig, GuidanceClassifier, logp_from_logits
from .ort import run_onnx

GRAD_TOL = 1e-4


def input_names(controls: Sequence[str], attribute_slots: Optional[int] = None) -> List[str]:
    names = ["x_t", "t"]
    for c in controls:
        if c == "attribute" and attribute_slots:
            names.append("select_attribute")
        names.append(f"target_{c}")
        if c in MASKED:
            names.append(f"mask_{c}")
    return names


def _split(controls: Sequence[str], tm: Sequence[torch.Tensor], attribute_slots: Optional[int] = None):
    """Per control (name, target, mask or None, select or None), in input order."""
    out, i = [], 0
    for c in controls:
        select = None
        if c == "attribute" and attribute_slots:
            select = tm[i]
            i += 1
        target = tm[i]
        i += 1
        mask = None
        if c in MASKED:
            mask = tm[i]
            i += 1
        out.append((c, target, mask, select))
    return out


def joint_logp(model: GuidanceClassifier, controls: Sequence[str], x_text, t, *tm,
               attribute_slots: Optional[int] = None) -> torch.Tensor:
    """[B, C] log-probabilities of every control's target, from one trunk pass."""
    h = model.trunk(x_text, t)
    return torch.stack([logp_from_logits(c, model.head(c, h) if select is None else model.attribute_head_selected(h, select),
                                         target, mask)
                        for c, target, mask, select in _split(controls, tm, attribute_slots)], dim=1)


def joint_grad_fn(model: GuidanceClassifier, controls: Sequence[str], attribute_slots: Optional[int] = None):
    c = model.cfg
    a, b = c.text_start, c.text_start + c.text_len

    def lp_text(x_text, t, *tm):
        lp = joint_logp(model, controls, x_text, t, *tm, attribute_slots=attribute_slots)
        return lp.sum(), lp

    g = fgrad(lp_text, argnums=0, has_aux=True)

    def fn(x_t, t, *tm):
        gt, lp = g(x_t[:, a:b], t, *tm)
        return lp, _pad_along(gt, list(x_t.shape), 1, a, b)  # zero gradient outside the text segment

    return fn


def slot_shapes(model: GuidanceClassifier, B: int, slots: int) -> Tuple[List[int], List[int], List[int]]:
    """(select, target, mask) shapes of the attribute inputs with `slots` field slots."""
    return [B, slots, len(model.cfg.fields)], [B, slots, model.cfg.kmax], [B, slots]


def example_inputs(model: GuidanceClassifier, controls: Sequence[str], B: int, seed: int = 0,
                   attribute_slots: Optional[int] = None) -> List[torch.Tensor]:
    """x_t, t, then per control a random soft target (scaled, as the engine sends weighted ones) and a 0/1 mask; with
    attribute slots, each sample's slots select distinct random fields."""
    gen = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    ins = [torch.randn(B, cfg.canvas_len, cfg.d, generator=gen), torch.randint(0, 2000, (B,), generator=gen).float()]
    for c in controls:
        tshape, mshape = target_shape(model, c, B)
        if c == "attribute" and attribute_slots:
            sshape, tshape, mshape = slot_shapes(model, B, attribute_slots)
            select = torch.zeros(*sshape)
            for i in range(B):
                for s, f in enumerate(torch.randperm(sshape[2], generator=gen)[:attribute_slots].tolist()):
                    select[i, s, f] = 1.0
            ins.append(select)
        target = torch.softmax(torch.randn(*tshape, generator=gen) * 3, dim=-1) * (0.5 + torch.rand(1, generator=gen))
        ins.append(target)
        if mshape:
            ins.append((torch.rand(*mshape, generator=gen) < 0.6).float())
    return ins


def export_joint_graph(model: GuidanceClassifier, controls: Sequence[str], B: int, path: str, opset: int = 14,
                       attribute_slots: Optional[int] = None) -> None:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    ex = tuple(example_inputs(model, controls, B, attribute_slots=attribute_slots))
    fn = joint_grad_fn(model, controls, attribute_slots)
    gm = _rewrite(make_fx(fn, decomposition_table=get_decompositions(DECOMPOSE))(*ex))
    with torch.no_grad():
        torch.onnx.export(gm, ex, path, input_names=input_names(controls, attribute_slots), output_names=["logp", "grad"],
                          opset_version=opset, do_constant_folding=True)


def all_fields_inputs(controls: Sequence[str], inputs: Sequence[torch.Tensor], attribute_slots: int) -> List[torch.Tensor]:
    """The same targets for the all-fields graph: each slot's target and mask moved to its field's row."""
    out = list(inputs[:2])
    for c, target, mask, select in _split(controls, inputs[2:], attribute_slots):
        if select is not None:
            target = torch.einsum("bsf,bsk->bfk", select, target)
            mask = torch.einsum("bsf,bs->bf", select, mask)
        out.append(target)
        if mask is not None:
            out.append(mask)
    return out


def joint_reference(model: GuidanceClassifier, controls: Sequence[str], *inputs,
                    attribute_slots: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """logp [B, C] and d sum(logp) / d x_t by plain autograd through the model's own (all-fields) heads; slotted
    attribute inputs are first moved to their fields' rows, so the slotted head is checked against the plain one."""
    model.eval()
    c = model.cfg
    if attribute_slots:
        inputs = all_fields_inputs(controls, inputs, attribute_slots)
    x = inputs[0].detach().clone().requires_grad_(True)
    lp = joint_logp(model, controls, x[:, c.text_start:c.text_start + c.text_len], inputs[1], *inputs[2:])
    (g,) = torch.autograd.grad(lp.sum(), x)
    return lp.detach(), g


def check_joint_graph(model: GuidanceClassifier, controls: Sequence[str], path: str, B: int, seed: int,
                      attribute_slots: Optional[int] = None) -> Dict:
    ins = example_inputs(model, controls, B, seed, attribute_slots)
    lp, g = joint_reference(model, controls, *ins, attribute_slots=attribute_slots)
    out = run_onnx(path, {n: v.numpy() for n, v in zip(input_names(controls, attribute_slots), ins)})
    return {"grad_max_abs_err": float(np.abs(out["grad"] - g.numpy()).max()),
            "logp_max_abs_err": float(np.abs(out["logp"] - lp.numpy()).max()),
            "grad_max_abs": float(g.abs().max())}


def export_joint(model: GuidanceClassifier, bundle_dir: str, batch_sizes: Sequence[int],
                 controls: Sequence[str] = CONTROLS) -> Tuple[dict, List[str]]:
    """Write classifiers/joint.b<B>.onnx (all fields) and, when attribute is a control, classifiers/joint1.b<B>.onnx
    (one field slot); check each against autograd; returns the manifest entry and the files."""
    os.makedirs(os.path.join(bundle_dir, "classifiers"), exist_ok=True)
    cfg = model.cfg

    def variant(stem: str, slots: Optional[int]) -> Tuple[dict, List[dict]]:
        files, errs = {}, []
        for B in batch_sizes:
            rel = f"classifiers/{stem}.b{B}.onnx"
            path = os.path.join(bundle_dir, rel)
            export_joint_graph(model, controls, B, path, attribute_slots=slots)
            chk = check_joint_graph(model, controls, path, B, seed=200 + B, attribute_slots=slots)
            if chk["grad_max_abs_err"] > GRAD_TOL * max(1.0, chk["grad_max_abs"]):
                raise RuntimeError(f"{rel}: exported gradient differs from autograd by {chk['grad_max_abs_err']:.3g}")
            files[str(B)] = rel
            errs.append(chk)
        shapes = {}
        for c in controls:
            names = (f"target_{c}", f"mask_{c}")
            sh = target_shape(model, c, 0)
            if c == "attribute" and slots:
                names = ("select_attribute",) + names
                sh = slot_shapes(model, 0, slots)
            shapes.update({n: s for n, s in zip(names, sh) if s})
        inputs = {"x_t": f"float32[B,{cfg.canvas_len},{cfg.d}]", "t": "float32[B]",
                  **{n: "float32[B," + ",".join(str(x) for x in s[1:]) + "]" for n, s in shapes.items()}}
        return {"files": files, "inputs": inputs}, errs

    main, errs = variant("joint", None)
    entry = {
        "controls": list(controls),
        "files": main["files"],
        "batch_sizes": sorted(batch_sizes),
        "segment": "text",
        "inputs": main["inputs"],
        "outputs": {"logp": f"float32[B,{len(controls)}]", "grad": f"float32[B,{cfg.canvas_len},{cfg.d}]"},
    }
    all_files = list(main["files"].values())
    if "attribute" in controls:
        one, errs1 = variant("joint1", 1)
        entry["one_field"] = {**one, "note": "attribute head scored for one field, chosen per sample by select_attribute "
                                             "(one-hot over the classifier's fields); use when at most one field is guided"}
        errs += errs1
        all_files += list(one["files"].values())
    entry["metrics"] = {"grad_check_max_abs_err": max(e["grad_max_abs_err"] for e in errs),
                        "logp_check_max_abs_err": max(e["logp_max_abs_err"] for e in errs)}
    return entry, all_files


CARD_HEADING = "## Joint guidance graph"


def card_lines(entry: dict) -> List[str]:
    return [f"`classifiers/joint.b<B>.onnx` (batch sizes {', '.join(str(b) for b in entry['batch_sizes'])}) runs the "
            f"classifiers' shared trunk once for all of {', '.join(entry['controls'])}: it takes every control's target "
            "(zero for a control that is not guided) and returns each control's log p(target | x_t, t) and the gradient "
            "of their sum with respect to x_t, so guiding on several controls costs one trunk pass per Adagrad step. "
            + ("`classifiers/joint1.b<B>.onnx` is the same graph with the attribute head scored for one record field, "
               "chosen by the one-hot input select_attribute; the engine uses it when at most one field is guided. "
               if entry.get("one_field") else "") +
            f"Checked against PyTorch autograd in onnxruntime-node: max abs gradient error "
            f"{entry['metrics']['grad_check_max_abs_err']:.1e}. Made by `python -m training.guidance.joint`."]


def load_classifiers(ckpt_path: str, bundle_dir: str) -> GuidanceClassifier:
    ck = torch.load(ckpt_path, map_location="cpu")
    emb = os.path.join(bundle_dir, read_manifest(bundle_dir)["embedding"]["file"])
    with open(emb, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    if ck.get("emb_sha256") and ck["emb_sha256"] != sha:
        raise ValueError(f"{ckpt_path}: trained on other embeddings than {emb}")
    model = GuidanceClassifier(ClassifierConfig(**ck["config"]))
    model.load_state_dict(ck["state_dict"])
    return model.eval()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--classifiers-ckpt", required=True, help="classifiers.pt saved by train_all --save-dir")
    ap.add_argument("--batch-sizes", default="1,4,8")
    args = ap.parse_args(argv)
    model = load_classifiers(args.classifiers_ckpt, args.bundle)
    entry, files = export_joint(model, args.bundle, sorted({int(x) for x in args.batch_sizes.split(",")}))
    set_card_section(args.bundle, CARD_HEADING, card_lines(entry))
    add_files_and_rehash(args.bundle, files + ["DATA_CARD.md"], {"joint_guidance": entry})
    print(f"{args.bundle}: joint guidance graphs {entry['files']}, one field: {entry.get('one_field', {}).get('files')}, "
          "grad max abs err "
          f"{entry['metrics']['grad_check_max_abs_err']:.2e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
