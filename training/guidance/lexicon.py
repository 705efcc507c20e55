"""Token label lexicons for diffusion bundles: log p(label | token) per vocabulary token, for parts of speech and phrase
spans, counted over the labelled training texts (the same labels the classifiers learn, training/labels/).

Why: a POS template or a span asks for a label at each position, and in the labelled texts a token's label is mostly
its own (the POS classifier reads 99% of tags right from an unmasked canvas, 16% from a fully masked one). The
classifier's first-order gradient ranks candidates poorly where the template fights what the model wants to write.
A lexicon is the exact version of that local part: for a head that sees only the token at position i, adding
w x log p(target_i | v) to every candidate v's logit samples from p_model(v) p(target_i | v)^w, with no Taylor
approximation and no top-k cut. The engine adds it before the classifier term (families/masked/guidance.ts); a
continuous bundle adds it to the rounding scores -||x0 - e_v||^2 where it clamps x0 to a token (src-main/engine/lexicon.ts).

Estimate: counts c(v, y) over the text segment (whitespace-only pieces SPACE, <end> and padding PAD / O), smoothed
toward the overall label distribution p(y): p(y | v) = (c(v, y) + a p(y)) / (c(v) + a); a token never seen in a text
gets the floor 1e-9 for every label. Written as float32 [V, C] little-endian, row v = token id v.

    /usr/bin/python3 -m training.guidance.lexicon --bundle models/e2e-masked
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional

import numpy as np

from training.dlm_train.bundle import add_files_and_rehash, read_manifest, set_card_section
from training.dlm_train.data import CanvasLayout
from training.dlm_train.paths import E2E_DATA

from .labels import POS_LABELS, SPAN_LABELS, GuidanceData, bundle_guidance_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CARD_HEADING = "## Token label lexicons"
PRIOR = 1.0
FLOOR = 1e-9
# weights at guidance strength 1, measured on the dev control targets: a masked bundle adds them to logits
# (docs/evaluation/2026-12-05-e2e-masked-lexicon-dev.md; spans 6 from its later sweep), a continuous one to the rounding scores -||x0 - e||^2
# (the sweep on e2e-default 2.1 in training/README.md)
DEFAULT_WEIGHTS = {"masked-diffusion": {"pos": 2.0, "spans": 6.0},
                   "continuous-embedding-diffusion": {"pos": 3.0, "spans": 5.0}}


def lexicon(ids: np.ndarray, labels: np.ndarray, vocab: int, n_labels: int, prior: float = PRIOR) -> np.ndarray:
    """ids, labels: [n, Lt] token ids and label indices of the text segments -> log p(label | token) [vocab, n_labels]."""
    counts = np.zeros((vocab, n_labels), dtype=np.float64)
    np.add.at(counts, (ids.reshape(-1), labels.reshape(-1)), 1.0)
    overall = counts.sum(0) / counts.sum()
    seen = counts.sum(1, keepdims=True)
    p = (counts + prior * overall) / (seen + prior)
    # a token no training text has (a record-only piece such as '":"') gets no label mass: the floor, as a label never
    # seen anywhere does, so that its log stays finite
    p = np.where(seen > 0, p, 0.0)
    return np.log(np.maximum(p, FLOOR)).astype("<f4")


def dev_accuracy(table: np.ndarray, ids: np.ndarray, labels: np.ndarray, text_only: np.ndarray) -> float:
    """Share of text positions whose most likely label under the lexicon is the labelled one."""
    pred = table[ids].argmax(-1)
    return float((pred == labels)[text_only].mean())


def build(bundle: str, data: GuidanceData, dev: GuidanceData, layout: CanvasLayout, vocab: int) -> List[dict]:
    ts, Lt = layout.text_start, layout.text_len
    entries = []
    for control, labels, dev_labels, names in (("pos", data.pos, dev.pos, POS_LABELS),
                                               ("spans", data.spans, dev.spans, SPAN_LABELS)):
        table = lexicon(data.ids[:, ts:ts + Lt], labels, vocab, len(names))
        rel = f"classifiers/{control}.lexicon.f32"
        os.makedirs(os.path.join(bundle, "classifiers"), exist_ok=True)
        table.tofile(os.path.join(bundle, rel))
        dev_ids = dev.ids[:, ts:ts + Lt]
        text_only = np.arange(Lt)[None, :] < dev.length[:, None]
        entries.append({"control": control, "file": rel, "shape": [vocab, len(names)], "dtype": "float32",
                        "labels": list(names), "prior": PRIOR, "train_texts": int(len(data.ids)),
                        "dev_accuracy": round(dev_accuracy(table, dev_ids, dev_labels, text_only), 4)})
    return entries


def attach(bundle: str, man: dict, data: GuidanceData, dev: GuidanceData, layout: CanvasLayout, vocab: int,
           weights: Optional[Dict[str, float]] = None) -> None:
    """Write both lexicons into the bundle, its data card section and manifest (`lexicons`), each with its weight at
    guidance strength 1: `weights`, else the bundle's lexicon's own, else the family's measured default."""
    entries = build(bundle, data, dev, layout, vocab)
    before = {e["control"]: e.get("weight") for e in man.get("lexicons") or []}
    defaults = DEFAULT_WEIGHTS[man["kind"]]
    for e in entries:
        c = e["control"]
        e["weight"] = float((weights or {}).get(c) or before.get(c) or defaults[c])
    set_card_section(bundle, CARD_HEADING, card_lines(entries))
    add_files_and_rehash(bundle, [e["file"] for e in entries] + ["DATA_CARD.md"], {"lexicons": entries})
    for e in entries:
        print(f"{e['file']}: {e['shape']}, dev accuracy {e['dev_accuracy']:.3f}, weight {e['weight']:g}", flush=True)


def card_lines(entries: List[dict]) -> List[str]:
    acc = ", ".join(f"{e['control']} {100 * e['dev_accuracy']:.1f}%" for e in entries)
    return [
        "Per-token label tables for parts of speech and phrase spans: log p(label | token), counted over "
        f"{entries[0]['train_texts']} labelled training texts and smoothed toward the overall label distribution "
        f"(prior {PRIOR:g}). At every text position a POS template or a span names, the engine adds weight x "
        "log p(target label | candidate) to every candidate token: to the denoiser's logits in a masked model, to the "
        "rounding scores -||x0 - e||^2 where a continuous model's x0 becomes tokens. It is the exact guidance of a "
        "head that reads one token. Weights at guidance strength 1: "
        + ", ".join(f"{e['control']} {e['weight']:g}" for e in entries) + ". "
        "Most likely label per dev text token, taken from the table alone: " + acc + ". "
        "Made by `python -m training.guidance.lexicon`.",
        "",
    ]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="a masked-diffusion bundle")
    ap.add_argument("--data", default=E2E_DATA, help="folder with trainset.csv and devset.csv")
    ap.add_argument("--labels", default=os.path.join(ROOT, "training", "labels"))
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training texts (smoke tests)")
    ap.add_argument("--pos-weight", type=float, default=0.0,
                    help="the pos lexicon's weight at guidance strength 1 (default: the bundle's, else measured defaults)")
    ap.add_argument("--spans-weight", type=float, default=0.0,
                    help="the spans lexicon's weight at guidance strength 1 (default: the bundle's, else measured defaults)")
    a = ap.parse_args(argv)
    man = read_manifest(a.bundle)
    if man.get("kind") not in DEFAULT_WEIGHTS:
        raise ValueError(f"{a.bundle}/manifest.json: kind {man.get('kind')!r}; lexicons serve {', '.join(DEFAULT_WEIGHTS)} bundles")
    gd = bundle_guidance_data(a.bundle, man, a.data, a.labels, a.limit or None)
    attach(a.bundle, man, gd.train, gd.dev, gd.layout, len(gd.tok),
           {k: w for k, w in (("pos", a.pos_weight), ("spans", a.spans_weight)) if w > 0})
    return 0


if __name__ == "__main__":
    sys.exit(main())
