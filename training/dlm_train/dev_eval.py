"""Dev-set data-to-text BLEU for a training run or snapshot, the measure recipes are compared by (training/README.md).

    python3 -m training.dlm_train.dev_eval --run training/runs/e2e-masked [--snapshot .../ema-0020min.pt]
        [--mrs 100] [--steps 64] [--block-length 16]

Takes the first `--mrs` distinct meaning representations of the dev set in file order, generates one text per MR
with the record held, and scores corpus BLEU (lowercased, every reference of the MR, as `dlm-studio eval` computes it), with the share of
record values written verbatim. Never use the test files here.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections import Counter, OrderedDict
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


def tokenize13a(text: str, lowercase: bool = True) -> List[str]:
    """The same mteval-v13a tokenization as src-main/eval/bleu.ts, so training curves and `dlm-studio eval` agree."""
    s = f" {text} ".replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    s = s.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    if lowercase:
        s = re.sub(r"[A-Z]", lambda m: m.group(0).lower(), s)
    s = re.sub(r"([{-~[-` -&(-+:-@/])", r" \1 ", s)
    s = re.sub(r"([^0-9])([.,])", r"\1 \2 ", s)
    s = re.sub(r"([.,])([^0-9])", r" \1 \2", s)
    s = re.sub(r"([0-9])(-)", r"\1 \2 ", s)
    return s.split()


def corpus_bleu(hyps: List[str], refs: List[List[str]], max_order: int = 4) -> dict:
    """Multi-reference corpus BLEU as the E2E challenge computes it: clipped n-gram counts summed over the corpus,
    brevity penalty against the reference length closest to each hypothesis (ties: the shorter)."""
    matches = [0] * max_order
    totals = [0] * max_order
    hyp_len = ref_len = 0
    for h, rs in zip(hyps, refs):
        ht = tokenize13a(h)
        rts = [tokenize13a(r) for r in rs]
        hyp_len += len(ht)
        ref_len += min((abs(len(r) - len(ht)), len(r)) for r in rts)[1]
        for n in range(1, max_order + 1):
            hc = Counter(tuple(ht[i:i + n]) for i in range(len(ht) - n + 1))
            mx: Counter = Counter()
            for r in rts:
                for g, c in Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1)).items():
                    mx[g] = max(mx[g], c)
            matches[n - 1] += sum(min(c, mx[g]) for g, c in hc.items())
            totals[n - 1] += max(0, len(ht) - n + 1)
    prec = [m / t if t else 0.0 for m, t in zip(matches, totals)]
    if min(prec) <= 0:
        score = 0.0
    else:
        score = math.exp(sum(math.log(p) for p in prec) / max_order)
    bp = 1.0 if hyp_len > ref_len else (math.exp(1 - ref_len / hyp_len) if hyp_len else 0.0)
    return {"bleu": 100 * bp * score, "precisions": [100 * p for p in prec], "bp": bp}


def bleu_report(hyps: List[str], groups) -> dict:
    b = corpus_bleu(hyps, [g["refs"] for g in groups])
    vals = [(str(v).lower(), h.lower()) for g, h in zip(groups, hyps) for k, v in g["record"].items()
            if k not in ("familyFriendly",)]
    verbatim = sum(v in h for v, h in vals) / max(1, len(vals))
    return {"bleu": round(b["bleu"], 2), "precisions": [round(p, 1) for p in b["precisions"]], "bp": round(b["bp"], 3),
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
    ap.add_argument("--temperature", type=float, default=0.0, help="masked family: 0 = argmax")
    ap.add_argument("--top-p", type=float, default=1.0)
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
        settings = M.MaskedSettings(steps=args.steps, block_length=args.block_length, confidence=args.confidence,
                                   temperature=args.temperature, top_p=args.top_p)
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
                "confidence": args.confidence, "temperature": args.temperature, "top_p": args.top_p, "eval_s": round(time.time() - t0, 1)})
    print(json.dumps(rep))
    for h in hyps[:args.show]:
        print("  ", h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
