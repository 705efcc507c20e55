"""Guidance labels: character-level labels from training/labels/*.jsonl.gz -> per-token targets on the canvas.

Alignment rule (documented in the data card): a tokenizer token takes the label of the character-level label at its
first non-space character (the wink-nlp token, or compromise chunk, covering that character). A token made only of
whitespace is tagged SPACE (as wink-nlp tags whitespace tokens); for chunks it is I-X when it lies strictly inside
chunk X's span, else O. Chunk BIO: a token is B-X when it is the first token whose first non-space character falls in
chunk X's span, I-X for later ones.
Positions after the text (<end> and <pad>) are PAD for the POS tagger and O for the chunker.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from training.dlm_train.data import E2E_FIELDS, CanvasLayout, Example, encode_split, read_corpus
from training.dlm_train.tokenizer import Tokenizer, pretokenize

UPOS = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X"]
POS_LABELS = UPOS + ["SPACE", "PAD"]
SPAN_LABELS = ["O", "B-NP", "I-NP", "B-VP", "I-VP", "B-PP", "I-PP"]
SENTIMENT_LABELS = ["negative", "neutral", "positive"]


def load_label_file(path: str) -> Tuple[dict, Dict[int, dict]]:
    meta: Optional[dict] = None
    rows: Dict[int, dict] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for ln, line in enumerate(f, start=1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj.get("meta"):
                meta = obj
                continue
            for key in ("i", "sha1", "pos", "chunks", "sentiment"):
                if key not in obj:
                    raise ValueError(f"{path}:{ln}: missing field {key!r}")
            rows[int(obj["i"])] = obj
    if meta is None:
        raise ValueError(f"{path}: no meta line")
    return meta, rows


def text_sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def token_char_spans(tok: Tokenizer, text: str) -> List[Tuple[int, int]]:
    """[start, end) character span of each token tok.encode(text) produces (same piece rule as encode)."""
    spans: List[Tuple[int, int]] = []
    at = 0
    for p in pretokenize(text):
        if p in tok.index:
            spans.append((at, at + len(p)))
        else:
            spans.extend((at + k, at + k + 1) for k in range(len(p)))
        at += len(p)
    return spans


def _first_non_space(text: str, a: int, b: int) -> int:
    for c in range(a, b):
        if not text[c].isspace():
            return c
    return -1


def token_pos(text: str, spans: Sequence[Tuple[int, int]], codes: str, decode: Dict[str, str]) -> List[str]:
    out = []
    for a, b in spans:
        c = _first_non_space(text, a, b)
        if c < 0:
            out.append("SPACE")
        else:
            out.append(decode.get(codes[c], "X"))  # '_': a character no wink token covers
    return out


def token_chunks(text: str, spans: Sequence[Tuple[int, int]], chunks: Sequence[Sequence]) -> List[str]:
    out = []
    seen = set()
    for a, b in spans:
        c = _first_non_space(text, a, b)
        label = "O"
        for j, (s, e, kind) in enumerate(chunks):
            if c >= 0 and s <= c < e:
                label = ("I-" if j in seen else "B-") + kind
                seen.add(j)
                break
            if c < 0 and s < a and b <= e:  # whitespace inside a chunk continues it
                label = "I-" + kind
                break
        out.append(label)
    return out


@dataclass
class GuidanceData:
    ids: np.ndarray        # int64 [n, N] canvas token ids
    pos: np.ndarray        # int64 [n, Lt] index into POS_LABELS
    spans: np.ndarray      # int64 [n, Lt] index into SPAN_LABELS
    attr: np.ndarray       # int64 [n, F] 0 = not mentioned, v+1 = value_labels[field][v], -1 = value unseen in training
    length: np.ndarray     # int64 [n] text tokens (without <end>)
    sentiment: np.ndarray  # int64 [n] index into SENTIMENT_LABELS
    dropped: int
    unlabelled: int


def build_guidance_data(tok: Tokenizer, layout: CanvasLayout, examples: Sequence[Example], label_path: str,
                        value_labels: Dict[str, List[str]], limit: Optional[int] = None) -> GuidanceData:
    meta, rows = load_label_file(label_path)
    decode = {code: tag for tag, code in meta["upos_codes"].items()}
    pos_ix = {t: i for i, t in enumerate(POS_LABELS)}
    span_ix = {t: i for i, t in enumerate(SPAN_LABELS)}
    fields = list(value_labels)
    val_ix = {f: {v: i + 1 for i, v in enumerate(vs)} for f, vs in value_labels.items()}
    enc = encode_split(tok, layout, examples)
    Lt, ts = layout.text_len, layout.text_start
    keep, P, S, A, Ln, Se = [], [], [], [], [], []
    unlabelled = 0
    for r, i in enumerate(enc.kept_index):
        if limit and len(keep) >= limit:
            break
        ex = examples[i]
        lab = rows.get(i)
        if lab is None or lab["sha1"] != text_sha1(ex.text) or len(lab["pos"]) != len(ex.text):
            unlabelled += 1  # no label, a different text, or UTF-16/code-point length mismatch
            continue
        spans = token_char_spans(tok, ex.text)
        n = len(spans)
        assert n == int((enc.ids[r, ts:] != 0).sum()) - 1, "token spans disagree with the canvas"
        p = [pos_ix[t] for t in token_pos(ex.text, spans, lab["pos"], decode)] + [pos_ix["PAD"]] * (Lt - n)
        s = [span_ix[t] for t in token_chunks(ex.text, spans, lab["chunks"])] + [0] * (Lt - n)
        rec = ex.record or {}
        a = [(val_ix[f].get(rec[f], -1) if f in rec else 0) for f in fields]
        keep.append(r)
        P.append(p)
        S.append(s)
        A.append(a)
        Ln.append(n)
        Se.append(SENTIMENT_LABELS.index(lab["sentiment"]))
    i64 = lambda x: np.asarray(x, dtype=np.int64)
    return GuidanceData(enc.ids[keep], i64(P).reshape(-1, Lt), i64(S).reshape(-1, Lt), i64(A).reshape(-1, len(fields)),
                        i64(Ln), i64(Se), enc.dropped, unlabelled)


@dataclass
class BundleGuidanceData:
    """What a bundle's guidance heads train on: its tokenizer and canvas, its record fields and the labelled texts."""
    tok: Tokenizer
    layout: CanvasLayout
    value_labels: Dict[str, List[str]]
    train: GuidanceData
    dev: GuidanceData


def bundle_guidance_data(bundle: str, man: dict, data_dir: str, labels_dir: str, train_limit: Optional[int] = None,
                         dev_limit: Optional[int] = None) -> BundleGuidanceData:
    """The labelled train and dev texts on a bundle's tokenizer and canvas (manifest `man`): data_dir holds
    trainset.csv and devset.csv, labels_dir e2e-train.jsonl.gz and e2e-dev.jsonl.gz."""
    tok = Tokenizer.load(os.path.join(bundle, man["tokenizer"]["vocab"]))
    segs = {s["name"]: s for s in man["canvas"]["segments"]}
    if "text" not in segs:
        raise ValueError(f"{bundle}/manifest.json: canvas.segments has no 'text' segment")
    layout = CanvasLayout(int(man["canvas"]["length"]), int(segs["record"]["length"]) if "record" in segs else 0)
    value_labels = {k: list(v) for k, v in ((man.get("record_schema") or {}).get("fields") or {}).items()}
    tr = build_guidance_data(tok, layout, read_corpus(os.path.join(data_dir, "trainset.csv")),
                             os.path.join(labels_dir, "e2e-train.jsonl.gz"), value_labels, train_limit)
    dv = build_guidance_data(tok, layout, read_corpus(os.path.join(data_dir, "devset.csv")),
                             os.path.join(labels_dir, "e2e-dev.jsonl.gz"), value_labels, dev_limit)
    return BundleGuidanceData(tok, layout, value_labels, tr, dv)
