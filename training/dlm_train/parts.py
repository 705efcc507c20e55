"""Split a file into parts of at most N MiB, and join them back, checked by sha256.

    python3 -m training.dlm_train.parts split training/runs/x/ckpt.pt --out $OUT/ckpt --max-mib 16
    python3 -m training.dlm_train.parts join <dir with ckpt.part000 ... and ckpt.parts.json> --out ckpt.pt

Used to carry weights back from a remote accelerator machine whose results come back as files of at most 16 MiB.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import List, Optional


def split(path: str, out_prefix: str, max_mib: float = 16.0) -> dict:
    size = int(max_mib * 1024 * 1024)
    h = hashlib.sha256()
    parts: List[str] = []
    os.makedirs(os.path.dirname(out_prefix) or ".", exist_ok=True)
    with open(path, "rb") as f:
        while True:
            chunk = f.read(size)
            if not chunk:
                break
            h.update(chunk)
            name = f"{os.path.basename(out_prefix)}.part{len(parts):03d}"
            with open(os.path.join(os.path.dirname(out_prefix) or ".", name), "wb") as g:
                g.write(chunk)
            parts.append(name)
    index = {"file": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": h.hexdigest(), "parts": parts}
    with open(out_prefix + ".parts.json", "w", encoding="utf-8") as f:
        json.dump(index, f, indent=1)
    return index


def join(index_path: str, out: str) -> str:
    with open(index_path, encoding="utf-8") as f:
        index = json.load(f)
    base = os.path.dirname(index_path)
    h = hashlib.sha256()
    tmp = out + ".tmp"
    with open(tmp, "wb") as g:
        for name in index["parts"]:
            p = os.path.join(base, name)
            if not os.path.exists(p):
                raise FileNotFoundError(f"{index_path}: part {name!r} is missing")
            with open(p, "rb") as f:
                data = f.read()
            h.update(data)
            g.write(data)
    if h.hexdigest() != index["sha256"]:
        os.remove(tmp)
        raise ValueError(f"{index_path}: joined parts do not match sha256 {index['sha256']}")
    os.replace(tmp, out)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("file")
    s.add_argument("--out", required=True, help="output prefix: writes <prefix>.partNNN and <prefix>.parts.json")
    s.add_argument("--max-mib", type=float, default=16.0)
    j = sub.add_parser("join")
    j.add_argument("index", help="the <prefix>.parts.json file")
    j.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "split":
        print(json.dumps(split(a.file, a.out, a.max_mib)))
    else:
        print(join(a.index, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
