"""Dev-set data-to-text BLEU for a training run or snapshot, the measure recipes are compared by (training/README.md).

    python3 -m training.dlm_train.dev_eval --run training/runs/e2e-masked [--snapshot .../ema-0020min.pt]
        [--mrs 100] [--steps 64] [--block-length 16]

Takes the first `--mrs` distinct meaning representations of the dev set in file order, generates one text per MR
with the record held, and scores corpus BLEU (sacrebleu, lowercased, every reference of the MR), with the share of
record values written verbatim. Never use the test files here.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import OrderedDict
from typing import List, Optional

import numpy as np
import torch

from .data import read_corpus
from .paths import E2E_DATA


def dev_mrs(path: str, count: int):
    groups: "OrderedDict[str, dict]" = OrderedDict()
    for ex in read_corpus(path):
        key = json.dumps(ex.record, sort_keys=True)
        g = groups.setdefault(key, {"record": ex.record, "refs": []})
        g["refs"].append(ex.text)
    return list(groups.values())[:count]


def bleu_report(hyps: List[str], groups) -> dict:
    import sacrebleu
    max_refs = max(len(g["refs"]) for g in groups)
    refs = [[g["refs"][i] if i < len(g["refs"]) else "" for g in groups] for i in range(max_refs)]
    b = sacrebleu.corpus_bleu(hyps, refs, lowercase=True)
    vals = [(str(v).lower(), h.lower()) for g, h in zip(groups, hyps) for k, v in g["record"].items()
            if k not in ("familyFriendly",)]
    verbatim = sum(v in h for v, h in vals) / max(1, len(vals))
    return {"bleu": round(b.score, 2), "precisions": [round(p, 1) for p in b.precisions], "bp": round(b.bp, 3),
            "values_verbatim": round(verbatim, 3), "mean_words": round(float(np.mean([len(h.split()) for h in hyps])), 1)}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--snapshot")
    ap.add_argument("--dev", default=os.path.join(E2E_DATA, "devset.csv"))
    ap.add_argument("--mrs", type=int, default=100)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--block-length", type=int, default=0)
    ap.add_argument("--confidence", default="low_confidence")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--show", type=int, default=3, help="print this many hypotheses")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    groups = dev_mrs(args.dev, args.mrs)
    t0 = time.time()
    ck = torch.load(args.snapshot or os.path.join(args.run, "ckpt.pt"), map_location="cpu", weights_only=False)
    family = ck.get("family", "continuous")
    hyps: List[str] = []
    if family == "masked":
        from . import masked_sample as M
        from .sample import decode, held_canvas
        ref = M.load_masked_run(args.run, args.snapshot)
        settings = M.MaskedSettings(steps=args.steps, block_length=args.block_length, confidence=args.confidence)
        for i in range(0, len(groups), args.batch):
            chunk = groups[i:i + args.batch]
            rows = [held_canvas(ref, g["record"], None) for g in chunk]
            given = np.stack([r[0] for r in rows])
            held = np.stack([r[1] for r in rows])
            ids = M.sample(ref, len(chunk), settings, seed=0, given=given, held=held, first_index=i)
            hyps += [decode(ref, row)["text"] for row in ids]
    else:
        from . import sample as S
        from .export import load_run  # noqa: F401  (the module load order export -> sample)
        ref = S.load_run_reference(args.run)
        if args.snapshot:
            ref.model.load_state_dict(ck["ema"])
            ref.model.eval()
            ref.emb = ref.model.embeddings().detach().clone()
        for i in range(0, len(groups), args.batch):
            chunk = groups[i:i + args.batch]
            rows = [S.held_canvas(ref, g["record"], None) for g in chunk]
            given = np.stack([r[0] for r in rows])
            held = np.stack([r[1] for r in rows])
            ids = S.sample(ref, len(chunk), steps=args.steps, seed=0, given=given, held=held, first_index=i)
            hyps += [S.decode(ref, row)["text"] for row in ids]
    rep = bleu_report(hyps, groups)
    rep.update({"family": family, "snapshot": os.path.basename(args.snapshot) if args.snapshot else "ckpt.pt",
                "step": ck.get("step", ck.get("state", {}).get("step")),
                "train_time_s": round(ck.get("train_time_s", ck.get("state", {}).get("train_time", 0.0)), 1),
                "mrs": len(groups), "steps": args.steps, "block_length": args.block_length,
                "confidence": args.confidence, "eval_s": round(time.time() - t0, 1)})
    print(json.dumps(rep))
    for h in hyps[:args.show]:
        print("  ", h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
