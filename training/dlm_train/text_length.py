"""The text length a record asks for (manifest `text_length`), for data-to-text with a model that holds a length.

A continuous model left to choose where its text ends writes short texts that leave fields out (e2e-default 2.2:
brevity penalty 0.90 on dev). Its denoiser can hold a length (`denoiser.held_length`), so the engine and the
reference sampler hold <end> where the record says the text should end:

    tokens = round(intercept + per_record_token * record_tokens)

record_tokens: the tokens of the canonical record (the record segment without padding). The line is a least-squares
fit over the training corpus, and the intercept then moves by the `quantile` of its residuals: texts a little longer
than the typical one lose less BLEU than shorter ones, which drop content (the quantile is chosen on dev MRs).

`typical_tokens` (the median length of the training texts) is the length a sentiment-, attribute- or spans-guided run
holds when nothing in it says the length: sentiment guidance otherwise takes the shortcut of ending the text early (neutral on 2.2.3 wrote
"The Punter is"; barring <end> there without holding it wrote filler).

    python3 -m training.dlm_train.text_length --bundle models/e2e-default --corpus ../shared/data/e2e/trainset.csv \
        --quantile 0.6
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Iterable, List, Optional, Tuple

import numpy as np

from .bundle import add_files_and_rehash, read_manifest, set_card_section
from .data import canonical_record, read_corpus
from .tokenizer import Tokenizer


def record_tokens(tok: Tokenizer, record: dict) -> int:
    return len(tok.encode(canonical_record(record)))


def fit(pairs: Iterable[Tuple[int, int]], quantile: float = 0.5) -> dict:
    """pairs: (record tokens, text tokens) per training example -> the manifest's text_length rule."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    xy = np.array(list(pairs), dtype=np.float64)
    if len(xy) < 2 or np.ptp(xy[:, 0]) == 0:
        raise ValueError("text_length: need at least two examples with different record lengths to fit a line")
    slope, intercept = np.polyfit(xy[:, 0], xy[:, 1], 1)
    residuals = xy[:, 1] - (intercept + slope * xy[:, 0])
    shift = float(np.quantile(residuals, quantile))
    return {"per_record_token": round(float(slope), 6), "intercept": round(float(intercept + shift), 6),
            "quantile": quantile, "examples": int(len(xy)),
            "typical_tokens": int(np.round(np.median(xy[:, 1]))),
            "mean_abs_error_tokens": round(float(np.mean(np.abs(residuals - shift))), 3)}


def predict(rule: dict, n_record_tokens: int, text_len: int) -> int:
    """Text tokens before <end> for a record of n tokens, within the text segment (<end> needs a place)."""
    n = int(np.floor(rule["intercept"] + rule["per_record_token"] * n_record_tokens + 0.5))
    return max(1, min(text_len - 1, n))


def corpus_pairs(tok: Tokenizer, path: str, limit: Optional[int] = None) -> List[Tuple[int, int]]:
    """(record tokens, text tokens) of the corpus's first `limit` examples (all without one) that have a record."""
    return [(record_tokens(tok, ex.record), len(tok.encode(ex.text))) for ex in read_corpus(path, limit) if ex.record]


def card_lines(rule: dict, corpus: str) -> List[str]:
    return [f"Data-to-text holds the text's `<end>` at round({rule['intercept']:.2f} + {rule['per_record_token']:.3f} x "
            f"record tokens) text tokens (manifest `text_length`), unless a run asks for a length itself: a least-squares "
            f"line over the {rule['examples']:,} texts of {corpus}, moved to the {rule['quantile']:g} quantile of its "
            f"residuals (mean absolute error {rule['mean_abs_error_tokens']} tokens)."
            + (f" A sentiment-, attribute- or spans-guided run that does not say its length holds {rule['typical_tokens']} tokens, the "
               "training texts' median (`text_length.typical_tokens`)." if "typical_tokens" in rule else "")]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="a bundle with a record segment whose model holds a length")
    ap.add_argument("--corpus", required=True, help="the training corpus (CSV of mr,ref); never the test files")
    ap.add_argument("--quantile", type=float, default=0.5, help="residual quantile the line moves to (0.5: median)")
    args = ap.parse_args(argv)
    m = read_manifest(args.bundle)
    segs = {s["name"]: s for s in m["canvas"]["segments"]}
    if "record" not in segs or "text" not in segs:
        raise SystemExit(f"{args.bundle}: the canvas has no record and text segments to relate")
    if not m.get("denoiser", {}).get("held_length"):
        raise SystemExit(f"{args.bundle}: its denoiser does not hold a length (denoiser.held_length; a continuous "
                         "bundle trained with train.p_tail_clean), so the engine would refuse the rule")
    if not os.path.isfile(args.corpus):
        raise SystemExit(f"--corpus {args.corpus}: no such file")
    tok = Tokenizer.load(os.path.join(args.bundle, m["tokenizer"]["vocab"]))
    try:
        rule = fit(corpus_pairs(tok, args.corpus), args.quantile)
    except ValueError as e:
        raise SystemExit(f"--quantile/--corpus: {e}")
    rule["fitted_on"] = os.path.basename(args.corpus)
    set_card_section(args.bundle, "## Text length for data-to-text", card_lines(rule, os.path.basename(args.corpus)))
    add_files_and_rehash(args.bundle, ["DATA_CARD.md"], {"text_length": rule})  # set_card_section writes the card
    print(f"{args.bundle}: text_length {rule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
