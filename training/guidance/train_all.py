"""Train, check and export the guidance classifiers and the fluency scorer into a model bundle (issue 4).

    /usr/bin/python3 -m training.guidance.train_all --bundle models/e2e-default --budget-min 25
    /usr/bin/python3 -m training.guidance.train_all --bundle <tiny bundle> --tiny        (CI smoke: seconds)

Reads the bundle's vocabulary, canvas, frozen embeddings and record schema; labels from training/labels/
(train split for training, dev split for metrics only); writes classifiers/<control>.b<B>.onnx, scorer.onnx,
the manifest's `classifiers` and `scorer` entries (files rehashed) and a section of DATA_CARD.md.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import sys
import time
from typing import Dict, List

import numpy as np
import torch

from training.dlm_train.data import read_corpus

from training.dlm_train.bundle import add_files_and_rehash, read_manifest, set_card_section
from training.dlm_train.paths import E2E_DATA

from .bundle import load_bundle, take_scorer
from .export import MASKED, export_grad_graph, reference, target_shape
from .joint import CARD_HEADING as JOINT_CARD_HEADING, card_lines as joint_card_lines, export_joint
from . import lexicon
from .labels import POS_LABELS, SENTIMENT_LABELS, SPAN_LABELS, build_guidance_data
from .model import CONTROLS, ClassifierConfig, GuidanceClassifier
from .ort import run_onnx
from .scorer import ScorerConfig, ScorerLM, evaluate_scorer, export_scorer, train_scorer
from .train import EVAL_KS, SAMPLING_STEPS, evaluate, train_classifier

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CARD_MARK = "## Guidance classifiers and fluency scorer"
GRAD_TOL = 1e-4


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def realistic_inputs(model, control: str, B: int, seed: int):
    """Random x_t and t, one-hot targets on valid classes, random masks (what the engine sends)."""
    g = torch.Generator().manual_seed(seed)
    c = model.cfg
    x = torch.randn(B, c.canvas_len, c.d, generator=g)
    t = torch.randint(0, 2000, (B,), generator=g).float()
    tshape, mshape = target_shape(model, control, B)
    if control == "attribute":
        idx = torch.stack([torch.randint(0, 1 + n, (B,), generator=g) for n in c.n_values], dim=1)
    else:
        idx = torch.randint(0, tshape[-1], tshape[:-1], generator=g)
    target = torch.nn.functional.one_hot(idx, tshape[-1]).float()
    if control == "sentiment":  # a class distribution is allowed too
        target = torch.softmax(torch.randn(B, 3, generator=g) * 2, dim=-1)
    ins = [x, t, target]
    if mshape:
        ins.append((torch.rand(*mshape, generator=g) < 0.6).float())
    return ins


def check_graph(model, control: str, path: str, B: int, seed: int) -> Dict:
    ins = realistic_inputs(model, control, B, seed)
    lp, g = reference(model, control, *ins)
    names = ["x_t", "t", "target", "mask"][:len(ins)]
    out = run_onnx(path, {n: v.numpy() for n, v in zip(names, ins)})
    gerr = float(np.abs(out["grad"] - g.numpy()).max())
    lerr = float(np.abs(out["logp"] - lp.numpy()).max())
    return {"inputs": ins, "logp": lp, "grad": g, "grad_max_abs_err": gerr, "logp_max_abs_err": lerr,
            "grad_max_abs": float(g.abs().max()), "logp_max_abs": float(lp.abs().max())}


def _b64(t: torch.Tensor) -> dict:
    a = np.ascontiguousarray(t.detach().numpy().astype("<f4"))
    return {"dims": list(a.shape), "f32_base64": base64.b64encode(a.tobytes()).decode("ascii")}


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data", default=E2E_DATA, help="folder with trainset.csv and devset.csv")
    ap.add_argument("--train", default="", help="training CSV (default: <data>/trainset.csv); rows must be the first "
                    "rows of trainset.csv, in order, as the labels are keyed by row")
    ap.add_argument("--dev", default="", help="dev CSV (default: <data>/devset.csv), same rule")
    ap.add_argument("--labels", default=os.path.join(ROOT, "training", "labels"))
    ap.add_argument("--budget-min", type=float, default=25.0, help="training time for classifiers + scorer")
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--joint-batch-sizes", default="1,4,8", help="batch sizes of the all-controls gradient graph "
                    "(joint.py; 4 lets the engine split a batch of 8 over two threads)")
    ap.add_argument("--tiny", action="store_true", help="CI smoke: tiny models, few examples and steps")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixtures", default="", help="write torch reference outputs for the onnxruntime-node test here")
    ap.add_argument("--skip-scorer", action="store_true", help="keep the bundle's current scorer")
    ap.add_argument("--scorer-from", default="", help="take the fluency scorer of this bundle (same vocabulary: it is a "
                    "causal LM over the text tokens, independent of the diffusion model) instead of training one")
    ap.add_argument("--skip-classifiers", action="store_true", help="keep the bundle's current classifiers")
    ap.add_argument("--save-dir", default="", help="save the PyTorch weights (classifiers.pt, scorer.pt) here")
    ap.add_argument("--classifiers-ckpt", default="", help="export this trained classifiers.pt instead of training "
                    "(it must have been trained on the bundle's embeddings)")
    ap.add_argument("--classifiers-continue", action="store_true", help="with --classifiers-ckpt: train further first")
    ap.add_argument("--classifier-lr", type=float, default=2e-3)
    ap.add_argument("--classifier-layers", type=int, default=0, help="trunk layers (default 2; fewer: cheaper guidance)")
    ap.add_argument("--classifier-hidden", type=int, default=0, help="trunk width (default 96)")
    ap.add_argument("--classifiers-warm-start", default="", help="a classifiers.pt whose matching tensors (same name "
                    "and shape) initialise a new trunk, e.g. a 1-layer trunk from the 2-layer one")
    ap.add_argument("--warm-start-other-embeddings", action="store_true", help="with --classifiers-warm-start: "
                    "accept a trunk trained on other embeddings (e.g. an earlier snapshot of the same run)")
    ap.add_argument("--scorer-ckpt", default="", help="export this trained scorer.pt instead of training one "
                    "(its vocabulary must be the bundle's)")
    ap.add_argument("--scorer-continue", action="store_true", help="with --scorer-ckpt: train it further first")
    ap.add_argument("--scorer-lr", type=float, default=2e-3)
    ap.add_argument("--train-only", action="store_true", help="with --save-dir: train and save the weights, export "
                    "nothing (export later with --classifiers-ckpt / --scorer-ckpt)")
    ap.add_argument("--classifier-share", type=float, default=0.7, help="share of the budget for the classifiers")
    a = ap.parse_args(argv)
    if a.train_only and (not a.save_dir or not a.skip_scorer):
        ap.error("--train-only needs --save-dir and --skip-scorer")
    if a.threads:
        torch.set_num_threads(a.threads)
    t_start = time.time()
    bsz = sorted({int(x) for x in a.batch_sizes.split(",")})

    if a.scorer_from:
        if a.scorer_ckpt:
            ap.error("--scorer-from and --scorer-ckpt both give the scorer; pick one")
        with open(os.path.join(a.bundle, "manifest.json"), encoding="utf-8") as f:
            take_scorer(a.bundle, json.load(f), a.scorer_from)
        a.skip_scorer = True
    b = load_bundle(a.bundle)
    lay = b.layout
    if not b.value_labels:
        raise ValueError(f"{a.bundle}/manifest.json: record_schema.fields is empty; the attribute classifier needs it")
    train_ex = read_corpus(a.train or os.path.join(a.data, "trainset.csv"))
    dev_ex = read_corpus(a.dev or os.path.join(a.data, "devset.csv"))
    lim_tr, lim_dev = (600, 200) if a.tiny else (None, None)
    tr = build_guidance_data(b.tok, lay, train_ex, os.path.join(a.labels, "e2e-train.jsonl.gz"), b.value_labels, lim_tr)
    dv = build_guidance_data(b.tok, lay, dev_ex, os.path.join(a.labels, "e2e-dev.jsonl.gz"), b.value_labels, lim_dev)
    log(f"data: train {len(tr.ids)} (dropped {tr.dropped} too long, {tr.unlabelled} unlabelled), "
        f"dev {len(dv.ids)} (dropped {dv.dropped}, {dv.unlabelled} unlabelled)")

    fields = list(b.value_labels)
    ccfg = ClassifierConfig(d=b.emb.shape[1], canvas_len=lay.length, text_start=lay.text_start, text_len=lay.text_len,
                            n_pos=len(POS_LABELS), n_spans=len(SPAN_LABELS), fields=fields,
                            n_values=[len(b.value_labels[f]) for f in fields])
    if a.tiny:
        ccfg.hidden, ccfg.layers, ccfg.heads, ccfg.time_dim = 32, 1, 2, 16
    if a.classifier_layers:
        ccfg.layers = a.classifier_layers
    if a.classifier_hidden:
        ccfg.hidden = a.classifier_hidden
    budget = a.budget_min * 60
    c_budget = budget * (a.classifier_share if not (a.skip_scorer or a.scorer_ckpt) else 1.0)
    new_files, entries, fixtures, joint_entry = [], [], {}, None
    if not a.skip_classifiers:
        entries, joint_entry = classifiers(a, b, tr, dv, ccfg, c_budget, bsz, new_files, fixtures)
    if a.train_only:
        log("train-only: weights saved, nothing exported")
        return 0
    scorer_info = None
    if not a.skip_scorer:
        s_budget = budget if a.tiny or a.skip_classifiers else max(10.0, budget - (time.time() - t_start))
        scorer_info = scorer(a, b, tr, dv, s_budget, new_files, fixtures)
    man = b.manifest
    write_card(a.bundle, entries or man.get("classifiers") or [], scorer_info or man.get("scorer"), a.tiny)
    updates = {}
    if not a.skip_classifiers:
        updates["classifiers"] = entries
        updates["joint_guidance"] = joint_entry
    if not a.skip_scorer:
        updates["scorer"] = scorer_info
    man = add_files_and_rehash(a.bundle, new_files + ["DATA_CARD.md"], updates)
    if not a.skip_classifiers:
        # the token label lexicons for POS and spans, counted from the same labels (seconds)
        lexicon.attach(a.bundle, man, tr, dv, lay, len(b.tok))
        man = read_manifest(a.bundle)
    if a.fixtures:
        os.makedirs(a.fixtures, exist_ok=True)
        fpath = os.path.join(a.fixtures, f"{man.get('id', 'bundle')}.json")
        old = {}
        if os.path.exists(fpath) and (a.skip_classifiers or a.skip_scorer):
            with open(fpath) as f:
                old = json.load(f).get("controls", {})
        with open(fpath, "w") as f:
            json.dump({"bundle": man.get("id"), "controls": {**old, **fixtures}}, f)
    sizes = {p: os.path.getsize(os.path.join(a.bundle, p)) for p in new_files}
    log(f"done in {time.time() - t_start:.0f} s; files: {json.dumps(sizes)}")
    return 0


def load_checkpoint(path: str, key: str, expected: str, mismatch: str) -> dict:
    """A saved classifiers.pt / scorer.pt whose `key` (a sha256 of what it was trained on) must equal `expected`."""
    ck = torch.load(path, map_location="cpu")
    if ck[key] != expected:
        raise ValueError(f"{path}: {mismatch}")
    return ck


def restore(ck: dict, model: torch.nn.Module, what: str, path: str, log) -> dict:
    """A training result ({run fields, "model"}) from a checkpoint, without training."""
    model.load_state_dict(ck["state_dict"])
    log(f"{what}: loaded {path} ({ck['run']['steps']} steps)")
    return {**ck["run"], "model": model.eval()}


def classifiers(a, b, tr, dv, ccfg, c_budget, bsz, new_files, fixtures):
    lay = b.layout
    emb_sha = hashlib.sha256(np.ascontiguousarray(b.emb, dtype="<f4").tobytes()).hexdigest()
    emb_mismatch = f"trained on other embeddings than {a.bundle}/embeddings.f32"
    if a.classifiers_ckpt:
        ck = load_checkpoint(a.classifiers_ckpt, "emb_sha256", emb_sha, emb_mismatch)
        if ck.get("value_labels") != b.value_labels:
            raise ValueError(f"{a.classifiers_ckpt}: attribute values differ from {a.bundle}/manifest.json record_schema")
        ccfg = ClassifierConfig(**ck["config"])
    if a.classifiers_ckpt and a.classifiers_continue:
        tr_out = train_classifier(ccfg, b.emb, lay.text_start, tr, c_budget, seed=a.seed, lr=a.classifier_lr,
                                  max_steps=30 if a.tiny else None, log=log, init=ck)
    elif a.classifiers_ckpt:
        tr_out = restore(ck, GuidanceClassifier(ccfg), "classifiers", a.classifiers_ckpt, log)
    else:
        init = None
        if a.classifiers_warm_start:
            # a trunk trained on an earlier snapshot's embeddings of the same run is a fair starting point (the
            # embeddings drift slowly late in training), but only when asked for: it is not this bundle's
            expect = torch.load(a.classifiers_warm_start, map_location="cpu")["emb_sha256"] \
                if a.warm_start_other_embeddings else emb_sha
            ws = load_checkpoint(a.classifiers_warm_start, "emb_sha256", expect, emb_mismatch +
                                 " (--warm-start-other-embeddings starts from it anyway)")
            if ws["emb_sha256"] != emb_sha:
                log(f"warm start from {a.classifiers_warm_start}, trained on other embeddings than this bundle's")
            init = {"state_dict": ws["state_dict"], "run": {"steps": 0, "seconds": 0.0}, "partial": True}
        tr_out = train_classifier(ccfg, b.emb, lay.text_start, tr, c_budget, seed=a.seed, lr=a.classifier_lr,
                                  max_steps=30 if a.tiny else None, log=log, init=init)
    model = tr_out["model"]
    if a.save_dir:
        os.makedirs(a.save_dir, exist_ok=True)
        torch.save({"config": ccfg.to_json(), "state_dict": model.state_dict(), "emb_sha256": emb_sha,
                    "value_labels": b.value_labels,
                    "run": {k: v for k, v in tr_out.items() if k != "model"}}, os.path.join(a.save_dir, "classifiers.pt"))
    if a.train_only:
        return [], None
    log(f"classifiers: {tr_out['steps']} steps in {tr_out['seconds']} s; evaluating on dev")
    acc = evaluate(model, b.emb, lay.text_start, dv)
    for c in CONTROLS:
        log(f"  {c:10s} " + " ".join(f"{k}:{v:.3f}" for k, v in acc[c].items()))

    cdir = os.path.join(a.bundle, "classifiers")
    os.makedirs(cdir, exist_ok=True)
    entries = []
    d, N = ccfg.d, ccfg.canvas_len
    for c in CONTROLS:
        files, errs = {}, []
        for B in bsz:
            rel = f"classifiers/{c}.b{B}.onnx"
            export_grad_graph(model, c, B, os.path.join(a.bundle, rel))
            chk = check_graph(model, c, os.path.join(a.bundle, rel), B, seed=100 + B)
            errs.append(chk)
            if chk["grad_max_abs_err"] > GRAD_TOL * max(1.0, chk["grad_max_abs"]):
                raise RuntimeError(f"{rel}: exported gradient differs from autograd by {chk['grad_max_abs_err']:.3g}")
            files[str(B)] = rel
            new_files.append(rel)
            if B == bsz[0]:
                fixtures[c] = {"file": rel, "batch": B, "inputs": dict(zip(["x_t", "t", "target", "mask"],
                                                                        map(_b64, chk["inputs"]))),
                               "logp": _b64(chk["logp"]), "grad": _b64(chk["grad"])}
        tshape, mshape = target_shape(model, c, 0)
        shp = lambda s: "float32[B," + ",".join(str(x) for x in s[1:]) + "]"
        entry = {
            "control": c, "files": files, "batch_sizes": bsz, "segment": "text",
            "inputs": {"x_t": f"float32[B,{N},{d}]", "t": "float32[B]", "target": shp(tshape),
                       **({"mask": shp(mshape)} if c in MASKED else {})},
            "outputs": {"grad": f"float32[B,{N},{d}]", "logp": "float32[B]"},
        }
        if c == "pos":
            entry["labels"] = POS_LABELS
        elif c == "spans":
            entry["labels"] = SPAN_LABELS
        elif c == "attribute":
            entry["labels"] = ["not mentioned"]
            entry["fields"] = ccfg.fields
            entry["value_labels"] = {f: b.value_labels[f] for f in ccfg.fields}
            entry["classes_per_field"] = ccfg.kmax
        elif c == "length":
            entry["labels"] = [str(i) for i in range(ccfg.text_len)]
        else:
            entry["labels"] = SENTIMENT_LABELS
        entry["metrics"] = {
            "dev_accuracy_by_t": acc[c],
            "dev_accuracy_key": f"k = step index of the {SAMPLING_STEPS}-step respaced schedule (graph input t = use[k]);"
                                " clean = EMB(w) with t = 0",
            "grad_check_max_abs_err": max(e["grad_max_abs_err"] for e in errs),
            "logp_check_max_abs_err": max(e["logp_max_abs_err"] for e in errs),
        }
        entry["model"] = {"shared_trunk": "one trunk trained jointly for all five controls; one head per graph",
                          "config": ccfg.to_json(), "steps": tr_out["steps"], "batch": tr_out["batch"],
                          "train_seconds": tr_out["seconds"], "train_examples": int(len(tr.ids)),
                          "dev_examples": int(len(dv.ids)),
                          **({"warm_start": os.path.basename(a.classifiers_warm_start)} if a.classifiers_warm_start
                             and not a.classifiers_ckpt else {})}
        entries.append(entry)
        log(f"exported {c}: {files}, grad max abs err {entry['metrics']['grad_check_max_abs_err']:.2e}")
    joint_entry, joint_files = export_joint(model, a.bundle, sorted({int(x) for x in a.joint_batch_sizes.split(",")}))
    set_card_section(a.bundle, JOINT_CARD_HEADING, joint_card_lines(joint_entry))
    new_files.extend(joint_files)
    log(f"exported joint: {joint_entry['files']}, one field: {joint_entry.get('one_field', {}).get('files')}, grad max abs err {joint_entry['metrics']['grad_check_max_abs_err']:.2e}")
    return entries, joint_entry


def scorer(a, b, tr, dv, s_budget, new_files, fixtures):
    lay = b.layout
    # the engine feeds <sep> + up to Lt-1 tokens + <end>: Lt + 1 positions
    scfg = ScorerConfig(vocab_size=len(b.tok), max_len=lay.text_len + 1)
    if a.tiny:
        scfg.hidden, scfg.layers, scfg.heads = 32, 1, 2
    vocab_sha = hashlib.sha256(json.dumps(b.tok.tokens, ensure_ascii=False).encode("utf-8")).hexdigest()
    if a.scorer_ckpt:
        ck = load_checkpoint(a.scorer_ckpt, "vocab_sha256", vocab_sha, f"trained with another vocabulary than {a.bundle}/vocab.json")
        scfg = ScorerConfig(**ck["config"])
    if a.scorer_ckpt and a.scorer_continue:
        so = train_scorer(scfg, tr.ids, lay.text_start, lay.text_len, s_budget, seed=a.seed, lr=a.scorer_lr,
                          log=log, init=ck)
    elif a.scorer_ckpt:
        so = restore(ck, ScorerLM(scfg), "scorer", a.scorer_ckpt, log)
    else:
        so = train_scorer(scfg, tr.ids, lay.text_start, lay.text_len, s_budget, seed=a.seed, lr=a.scorer_lr,
                          max_steps=30 if a.tiny else None, log=log)
    if a.save_dir:
        os.makedirs(a.save_dir, exist_ok=True)
        torch.save({"config": scfg.to_json(), "state_dict": so["model"].state_dict(), "vocab_sha256": vocab_sha,
                    "run": {k: v for k, v in so.items() if k != "model"}}, os.path.join(a.save_dir, "scorer.pt"))
    sm = evaluate_scorer(so["model"], dv.ids, lay.text_start, lay.text_len)
    log(f"scorer: {so['steps']} steps in {so['seconds']} s, dev perplexity {sm['dev_perplexity']}")
    export_scorer(so["model"], os.path.join(a.bundle, "scorer.onnx"))
    # the exported graph at a batch and length other than the export example's
    g = torch.Generator().manual_seed(7)
    tok = torch.randint(4, len(b.tok), (2, lay.text_len + 1), generator=g)
    tok[:, 0] = 1
    with torch.no_grad():
        ref = so["model"](tok).numpy()
    out = run_onnx(os.path.join(a.bundle, "scorer.onnx"), {"tokens": tok.numpy()})["logits"]
    serr = float(np.abs(out - ref).max())
    if serr > 1e-3:
        raise RuntimeError(f"scorer.onnx: logits differ from PyTorch by {serr:.3g}")
    lsm = torch.log_softmax(torch.from_numpy(ref), -1)
    nll = -lsm[:, :-1].gather(-1, tok[:, 1:].unsqueeze(-1)).squeeze(-1)
    fixtures["scorer"] = {"file": "scorer.onnx", "tokens": tok.flatten().tolist(), "dims": list(tok.shape),
                          "nll": _b64(nll), "logits_head": _b64(torch.from_numpy(ref[:, :, :16].copy()))}
    scorer_info = {
        "file": "scorer.onnx", "inputs": {"tokens": "int64[B,L]"}, "outputs": {"logits": f"float32[B,L,{len(b.tok)}]"},
        "bos": 1, "eos": 2, "max_len": lay.text_len + 1,
        "metrics": {**sm, "onnx_check_max_abs_err": serr},
        "model": {"type": "causal transformer", "config": scfg.to_json(), "steps": so["steps"],
                  "batch": so["batch"], "train_seconds": so["seconds"]},
    }
    new_files.append("scorer.onnx")
    return scorer_info


def write_card(bundle: str, entries, scorer, tiny: bool) -> None:
    if not entries:
        return
    ks = ["clean"] + [str(k) for k in EVAL_KS]
    m0 = entries[0]["model"]
    lines = [
        CARD_MARK, "",
        "Guidance classifiers read the text segment of the noisy canvas (the frozen diffusion embeddings EMB(w) noised "
        f"to a step k = floor({SAMPLING_STEPS} u^2), u uniform, of the {SAMPLING_STEPS}-step respaced sqrt schedule, "
        "or clean for 10% of the examples) with the timestep, as in Diffusion-LM. One small transformer trunk "
        f"(hidden {m0['config']['hidden']}, layers {m0['config']['layers']}) was trained jointly for all five controls "
        f"({m0['steps']} steps of batch {m0['batch']}, {m0['train_seconds']:.0f} s on {platform.machine()} CPU, "
        f"{m0['train_examples']} training texts"
        + (f"; warm-started from the matching tensors of an earlier trunk, {m0['warm_start']}" if m0.get("warm_start") else "")
        + "); each control ships as its own gradient graph (trunk + head) that "
        "returns log p(target | x_t, t) and its gradient with respect to x_t, one graph per batch size "
        f"({', '.join(entries[0]['files'])}).",
        "",
        "Labels (computed once by `node training/labels/make_labels.mjs` on the E2E training split; dev labels only "
        "for the metrics below):",
        "- parts of speech: wink-nlp 2 with wink-eng-lite-web-model (UPOS). A tokenizer piece takes the tag of the "
        "wink token covering its first non-space character; whitespace-only pieces are SPACE; positions after the text "
        "(<end>, <pad>) are PAD.",
        "- phrase spans: compromise 14's rule-based chunker (noun / verb chunks; a preposition plus the following noun "
        "chunk makes a PP). compromise has no full constituency parser (none exists in JavaScript), so these are "
        "chunks, not constituents of a parse tree; expect rule-based errors. Tagged per position as BIO: a piece "
        "takes the chunk of its first non-space character (B- on the chunk's first piece, I- after; whitespace pieces "
        "inside a chunk are I-, outside O).",
        "- semantic content: the E2E record of each text (class 0 = field not in the record).",
        "- length: the number of text tokens under this bundle's tokenizer.",
        "- sentiment: VADER (vader-sentiment) compound score, negative < -0.05 <= neutral <= 0.05 < positive.",
        "",
        "Dev accuracy by noise level (k = step of the 200-step schedule, 199 = pure noise end; clean = EMB(w)). "
        "pos/spans per text token, attribute per (text, field), length exact:",
        "",
        "| control | " + " | ".join(ks) + " | grad check max abs err |",
        "| --- | " + " | ".join("---" for _ in ks) + " | --- |",
    ]
    for e in entries:
        a = e["metrics"]["dev_accuracy_by_t"]
        lines.append(f"| {e['control']} | " + " | ".join(f"{a[k]:.3f}" for k in ks) +
                     f" | {e['metrics']['grad_check_max_abs_err']:.1e} |")
    lines.append("")
    if scorer:
        sm = scorer["metrics"]
        sc = scorer["model"]
        lines += [
            f"Fluency scorer (`scorer.onnx`): a causal transformer LM (hidden {sc['config']['hidden']}, "
            f"layers {sc['config']['layers']}, tied embeddings) over text tokens with this vocabulary, trained on the "
            f"E2E training texts ({sc['steps']} steps of batch {sc['batch']}, {sc['train_seconds']:.0f} s). "
            f"Dev perplexity {sm['dev_perplexity']} per token over text tokens and <end> "
            f"({sm['dev_tokens']} tokens); mean per-text perplexity {sm['dev_mean_text_perplexity']}.",
            "",
        ]
    if tiny:
        lines += ["(Tiny smoke-test configuration: these numbers are not meaningful.)", ""]
    set_card_section(bundle, CARD_MARK, lines[2:])


if __name__ == "__main__":
    sys.exit(main())
