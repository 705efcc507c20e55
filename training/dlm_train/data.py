"""Corpus reading, E2E meaning representations -> canonical record JSON, and canvas building.

Corpus shapes (docs: training/README.md):
- CSV with a text column (`ref` or `text`) and an optional record column (`mr` in E2E `field[value], ...` form,
  or `record` holding a JSON object);
- JSONL with `text` (or `ref`) and an optional `record` (an object, or an E2E MR string).
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .tokenizer import END, PAD, SEP, Tokenizer

E2E_FIELDS = ["name", "eatType", "food", "priceRange", "customer rating", "area", "familyFriendly", "near"]
_MR_ITEM = re.compile(r"\s*([^\[\],]+?)\s*\[([^\]]*)\]\s*(?:,|$)")


@dataclass
class Example:
    text: str
    record: Optional[Dict[str, str]] = None


def parse_mr(mr: str, where: str = "mr") -> Dict[str, str]:
    """`name[The Vaults], eatType[pub]` -> {"name": "The Vaults", "eatType": "pub"}."""
    out: Dict[str, str] = {}
    pos = 0
    mr = mr.strip()
    while pos < len(mr):
        m = _MR_ITEM.match(mr, pos)
        if not m:
            raise ValueError(f"{where}: cannot parse meaning representation at char {pos}: {mr[pos:pos + 40]!r}")
        key, val = m.group(1), m.group(2)
        if key in out:
            raise ValueError(f"{where}: field {key!r} appears twice")
        out[key] = val
        pos = m.end()
    return out


def canonical_record(rec: Dict[str, object]) -> str:
    """Compact JSON, keys in E2E field order first, then any other keys in their given order."""
    keys = [k for k in E2E_FIELDS if k in rec] + [k for k in rec if k not in E2E_FIELDS]
    return json.dumps({k: rec[k] for k in keys}, ensure_ascii=False, separators=(",", ":"))


def _record_from_cell(cell, where: str) -> Optional[Dict[str, str]]:
    if cell is None:
        return None
    if isinstance(cell, dict):
        return cell
    if not isinstance(cell, str):
        raise ValueError(f"{where}: record must be an object or a string, got {type(cell).__name__}")
    s = cell.strip()
    if not s:
        return None
    if s.startswith("{"):
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: record is not valid JSON: {e}") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: record JSON must be an object")
        return obj
    return parse_mr(s, where)


def read_corpus(path: str, limit: Optional[int] = None) -> List[Example]:
    out: List[Example] = []
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            for ln, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{ln}"
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{where}: invalid JSON: {e}") from None
                text = obj.get("text", obj.get("ref")) if isinstance(obj, dict) else None
                if not isinstance(text, str):
                    raise ValueError(f"{where}: field 'text' (or 'ref') must be a string")
                rec = obj.get("record", obj.get("mr"))
                out.append(Example(text, _record_from_cell(rec, f"{where}: field 'record'")))
                if limit and len(out) >= limit:
                    break
    elif path.endswith(".csv"):
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            tcol = "ref" if "ref" in cols else "text" if "text" in cols else None
            if tcol is None:
                raise ValueError(f"{path}: needs a text column named 'ref' or 'text' (columns: {cols})")
            rcol = "mr" if "mr" in cols else "record" if "record" in cols else None
            for ln, row in enumerate(reader, start=2):
                where = f"{path}:{ln}"
                rec = _record_from_cell(row[rcol], f"{where}: column '{rcol}'") if rcol else None
                out.append(Example(row[tcol], rec))
                if limit and len(out) >= limit:
                    break
    else:
        raise ValueError(f"{path}: corpus must be .csv or .jsonl")
    if not out:
        raise ValueError(f"{path}: no examples")
    return out


def vocab_texts(examples: Sequence[Example]) -> List[str]:
    texts = []
    for ex in examples:
        if ex.record is not None:
            texts.append(canonical_record(ex.record))
        texts.append(ex.text)
    return texts


@dataclass
class CanvasLayout:
    length: int
    record_len: int  # 0 for corpora without records (text segment only)

    @property
    def text_start(self) -> int:
        return self.record_len + 1 if self.record_len else 0

    @property
    def text_len(self) -> int:
        return self.length - self.text_start

    def segments(self) -> List[dict]:
        if not self.record_len:
            return [{"name": "text", "start": 0, "length": self.length}]
        return [
            {"name": "record", "start": 0, "length": self.record_len, "format": "json"},
            {"name": "sep", "start": self.record_len, "length": 1},
            {"name": "text", "start": self.text_start, "length": self.text_len},
        ]

    def to_json(self) -> dict:
        return {"length": self.length, "segments": self.segments()}


def build_canvas(tok: Tokenizer, layout: CanvasLayout, ex: Example) -> Optional[List[int]]:
    """[record ids, <pad>...][<sep>][text ids, <end>, <pad>...]; None when it does not fit."""
    text_ids = tok.encode(ex.text) + [END]
    if len(text_ids) > layout.text_len:
        return None
    if layout.record_len:
        if ex.record is None:
            raise ValueError("layout has a record segment but the example has no record")
        rec_ids = tok.encode(canonical_record(ex.record))
        if len(rec_ids) > layout.record_len:
            return None
        head = rec_ids + [PAD] * (layout.record_len - len(rec_ids)) + [SEP]
    else:
        head = []
    return head + text_ids + [PAD] * (layout.text_len - len(text_ids))


@dataclass
class EncodedSplit:
    ids: np.ndarray  # int64 [n, length]
    dropped: int
    total: int
    kept_index: List[int] = field(default_factory=list)


def encode_split(tok: Tokenizer, layout: CanvasLayout, examples: Sequence[Example]) -> EncodedSplit:
    rows, kept = [], []
    for i, ex in enumerate(examples):
        c = build_canvas(tok, layout, ex)
        if c is not None:
            rows.append(c)
            kept.append(i)
    ids = np.asarray(rows, dtype=np.int64).reshape(len(rows), layout.length)
    return EncodedSplit(ids, len(examples) - len(rows), len(examples), kept)


def record_schema(examples: Sequence[Example]) -> Dict[str, List[str]]:
    """field -> sorted distinct values seen in training records (E2E field order first)."""
    vals: Dict[str, set] = {}
    for ex in examples:
        for k, v in (ex.record or {}).items():
            vals.setdefault(k, set()).add(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    keys = [k for k in E2E_FIELDS if k in vals] + sorted(k for k in vals if k not in E2E_FIELDS)
    return {k: sorted(vals[k]) for k in keys}


def length_stats(tok: Tokenizer, examples: Sequence[Example]) -> Tuple[List[int], List[int]]:
    rec = [len(tok.encode(canonical_record(e.record))) for e in examples if e.record is not None]
    txt = [len(tok.encode(e.text)) + 1 for e in examples]
    return rec, txt
