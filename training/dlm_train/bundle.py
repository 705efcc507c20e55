"""Bundle manifest helpers: file hashing, rehashing after adding files, verification.

Other parts of the pipeline (guidance classifiers, fluency scorer) add their files with:

    from training.dlm_train.bundle import add_files_and_rehash
    add_files_and_rehash("models/e2e-default", ["classifiers/pos.b1.onnx", "scorer.onnx"],
                         {"classifiers": [...], "scorer": {...}})
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Iterable, Optional

FORMAT = "dlm-bundle/1"
MANIFEST = "manifest.json"


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_entry(bundle_dir: str, rel: str) -> dict:
    path = os.path.join(bundle_dir, rel)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{bundle_dir}: file {rel!r} does not exist")
    return {"path": rel, "sha256": sha256_file(path), "bytes": os.path.getsize(path)}


def read_manifest(bundle_dir: str) -> dict:
    path = os.path.join(bundle_dir, MANIFEST)
    with open(path, encoding="utf-8") as f:
        m = json.load(f)
    if m.get("format") != FORMAT:
        raise ValueError(f"{path}: field 'format' must be {FORMAT!r}, got {m.get('format')!r}")
    return m


def write_manifest(bundle_dir: str, manifest: dict) -> None:
    path = os.path.join(bundle_dir, MANIFEST)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def add_files_and_rehash(bundle_dir: str, paths: Iterable[str] = (), updates: Optional[dict] = None) -> dict:
    """Add files (paths relative to the bundle) to manifest.files, apply top-level manifest `updates`
    (e.g. {"classifiers": [...], "scorer": {...}}), re-hash every listed file, and write the manifest.
    Files listed before but now missing raise FileNotFoundError. Returns the new manifest."""
    m = read_manifest(bundle_dir)
    for k, v in (updates or {}).items():
        if k in ("format", "files"):
            raise ValueError(f"updates: field {k!r} is managed by add_files_and_rehash")
        m[k] = v
    rels = [f["path"] for f in m.get("files", [])]
    for p in paths:
        p = p.replace(os.sep, "/")
        if p.startswith("/") or ".." in p.split("/"):
            raise ValueError(f"path {p!r} must be relative to the bundle and stay inside it")
        if p == MANIFEST:
            raise ValueError("manifest.json is not listed in its own file list")
        if p not in rels:
            rels.append(p)
    m["files"] = [file_entry(bundle_dir, r) for r in rels]
    write_manifest(bundle_dir, m)
    return m


def verify_bundle(bundle_dir: str) -> dict:
    """Raise ValueError naming the file and field when a listed file is missing or its sha256/bytes differ."""
    m = read_manifest(bundle_dir)
    for i, f in enumerate(m.get("files", [])):
        path = os.path.join(bundle_dir, f["path"])
        if not os.path.isfile(path):
            raise ValueError(f"{bundle_dir}: files[{i}] {f['path']!r} is missing")
        if os.path.getsize(path) != f["bytes"]:
            raise ValueError(f"{bundle_dir}: files[{i}].bytes does not match {f['path']!r}")
        if sha256_file(path) != f["sha256"]:
            raise ValueError(f"{bundle_dir}: files[{i}].sha256 does not match {f['path']!r}")
    return m


def set_card_section(bundle_dir: str, heading: str, lines: Iterable[str]) -> None:
    """Replace the DATA_CARD.md section that starts with `heading` (a "## ..." line) up to the next "## " heading,
    or append it. The caller rehashes DATA_CARD.md."""
    path = os.path.join(bundle_dir, "DATA_CARD.md")
    body = "\n".join([heading, "", *lines])
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    if heading in text:
        head, _, rest = text.partition(heading)
        nxt = rest.find("\n## ")
        text = head + body + ("\n" + rest[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    with open(path, "w", encoding="utf-8") as f:
        f.write(text.rstrip("\n") + "\n")


WARM_START = "warm_start.json"


def describe_warm_start(weights: str) -> dict:
    """What a warm start loads: the weights file and, when a bundle's manifest.json sits beside it, that bundle and
    its training time (cumulative when it was warm-started itself), so later curves and data cards can add it up."""
    out = {"from": weights}
    man = os.path.join(os.path.dirname(weights), MANIFEST)
    if os.path.exists(man):
        with open(man, encoding="utf-8") as f:
            prior = json.load(f)
        tr = prior.get("training", {})
        out.update({"bundle": f"{prior.get('id')} {prior.get('version')}",
                    "wall_time_s": float(tr.get("cumulative_wall_time_s", tr.get("wall_time_s", 0.0)))})
    return out


def read_warm_start(run_dir: str) -> Optional[dict]:
    """A run's <run>/warm_start.json (written by train.py at a warm start), or None."""
    path = os.path.join(run_dir, WARM_START)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def prior_training_s(run_dir: str) -> float:
    """Training seconds before this run (its warm start's); 0 without one."""
    return float((read_warm_start(run_dir) or {}).get("wall_time_s", 0.0))
