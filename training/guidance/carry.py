"""Carry a continuous bundle's guidance (classifiers, joint gradient graphs, lexicons, fluency scorer) to a new
denoiser trained with the same embedding table (train.freeze_embeddings).

The classifiers read x_t = sqrt(abar) EMB(w) + noise, the lexicons and the scorer read tokens: none of them depends
on the denoiser, only on the embeddings and the vocabulary. So a warm start that kept the table keeps them valid, and
they are copied instead of retrained (retraining them briefly cost the 2.3 warm start guided POS success). Refused by
name when the vocabularies differ, or the embedding tables by more than float16 rounding.

    python3 -m training.guidance.carry --from models/e2e-default --to /path/to/new-bundle [--sampler-defaults]

--sampler-defaults also carries the source's sampler_defaults (steps, spacing, acceptance levels, candidates), which
were measured on its denoiser: a starting point for the new one until they are measured again.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import List, Optional

import numpy as np

from training.dlm_train.bundle import add_files_and_rehash, read_manifest, set_card_section, sha256_file

# manifest fields that describe guidance, and the data-card sections their builders write
FIELDS = ("classifiers", "joint_guidance", "lexicons", "scorer", "guidance_defaults")
CARD_SECTIONS = ("## Fluency scorer", "## Joint guidance graph", "## Guidance classifiers and fluency scorer",
                 "## Token label lexicons")


def guidance_files(m: dict) -> List[str]:
    joint = m.get("joint_guidance") or {}
    files = [f for c in m.get("classifiers", []) for f in c["files"].values()]
    files += list(joint.get("files", {}).values()) + list((joint.get("one_field") or {}).get("files", {}).values())
    files += [lx["file"] for lx in m.get("lexicons", [])]
    if m.get("scorer"):
        files.append(m["scorer"]["file"])
    listed = {f["path"] for f in m["files"]}
    missing = [f for f in files if f not in listed]
    if missing:
        raise ValueError(f"manifest names guidance files it does not list in files: {missing[:3]}")
    return sorted(set(files))


def same_bytes(a: str, b: str) -> bool:
    return sha256_file(a) == sha256_file(b)


def same_table(a: str, b: str) -> bool:
    """Equal float32 tables, up to the float16 rounding an export applies to the weights (export.py rounds them
    before writing; a bundle exported before that kept float32)."""
    if same_bytes(a, b):
        return True
    x, y = np.fromfile(a, dtype="<f4"), np.fromfile(b, dtype="<f4")
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=2e-3, atol=1e-4))


def card_section(text: str, heading: str) -> Optional[List[str]]:
    """The lines of a DATA_CARD.md section after its heading, up to the next '## ' heading; None if absent."""
    if heading not in text:
        return None
    rest = text.split(heading, 1)[1]
    nxt = rest.find("\n## ")
    return (rest[:nxt] if nxt >= 0 else rest).strip("\n").split("\n")


def carry(src: str, dst: str, sampler_defaults: bool = False) -> dict:
    ms, md = read_manifest(src), read_manifest(dst)
    for name, a, b, same in (("tokenizer.vocab", ms["tokenizer"]["vocab"], md["tokenizer"]["vocab"], same_bytes),
                             ("embedding.file", ms["embedding"]["file"], md["embedding"]["file"], same_table)):
        if not same(os.path.join(src, a), os.path.join(dst, b)):
            raise ValueError(f"{dst}: {name} ({b}) differs from {src}'s: the guidance was trained for another "
                             "vocabulary or embedding table (train with train.freeze_embeddings from that bundle)")
    files = guidance_files(ms)
    for f in files:
        os.makedirs(os.path.dirname(os.path.join(dst, f)) or dst, exist_ok=True)
        shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))
    src_card = os.path.join(src, "DATA_CARD.md")
    card = []
    if os.path.exists(src_card) and os.path.exists(os.path.join(dst, "DATA_CARD.md")):
        text = open(src_card, encoding="utf-8").read()
        for heading in CARD_SECTIONS:
            lines = card_section(text, heading)
            if lines is not None:
                # a section carried before says so once: its earlier "Carried from" line gives way to this one
                while lines and (lines[-1].startswith("(Carried from ") or not lines[-1].strip()):
                    lines = lines[:-1]
                set_card_section(dst, heading, lines + ["", f"(Carried from {ms['id']} {ms['version']}, whose "
                                                        "embedding table this model kept.)"])
                card = ["DATA_CARD.md"]
    updates = {k: ms[k] for k in FIELDS + (("sampler_defaults",) if sampler_defaults else ()) if k in ms}
    return add_files_and_rehash(dst, files + card, updates)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", required=True, help="the bundle whose guidance to carry")
    ap.add_argument("--to", dest="dst", required=True, help="the new bundle (same vocabulary and embedding table)")
    ap.add_argument("--sampler-defaults", action="store_true",
                    help="also carry the source's sampler_defaults (measured on its denoiser)")
    a = ap.parse_args(argv)
    try:
        m = carry(a.src, a.dst, a.sampler_defaults)
    except (ValueError, FileNotFoundError) as e:
        print(f"carry: {e}", file=sys.stderr)
        return 2
    print(f"{a.dst}: carried {len(m.get('classifiers', []))} classifiers, "
          f"{'a joint graph, ' if m.get('joint_guidance') else ''}{len(m.get('lexicons', []))} lexicons"
          f"{', the scorer' if m.get('scorer') else ''}{', the sampler defaults' if a.sampler_defaults else ''} "
          f"from {a.src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
