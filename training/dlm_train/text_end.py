"""The tokens a text may end on (manifest `text_end`), for guided texts that would otherwise stop mid-phrase.

Classifier guidance pulls a template's or span's words into place, and a masked model can then commit <end> right
after one that never ends a text: "The Plough is a family friendly Indian restaurant. Rated" (perplexity 44,000 under
the bundle's scorer; 2 of 160 spans-guided e2e-masked 1.1.0 texts ended that way). The engine keeps <end> and <pad> away
from a token that is not on this list, and such a token away from a committed <end>.

A token is on the list when it is the last token of at least `min_texts` training texts and of at least `min_share`
of its occurrences: "." (63% of its occurrences end a text), " centre" (1.8%), " friendly" (1.8%); not " It" (12,936
occurrences, none last) or " the". On E2E's training texts the defaults keep 143 of 1,791 tokens, which end 99.5%
of the texts.

    python3 -m training.dlm_train.text_end --bundle models/e2e-masked --corpus ../shared/data/e2e/trainset.csv
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
from typing import List, Optional

from .bundle import add_files_and_rehash, read_manifest, set_card_section
from .data import read_corpus
from .tokenizer import Tokenizer

MIN_TEXTS = 3
MIN_SHARE = 0.002
CARD_HEADING = "## Where a guided text may end"


def fit(tok: Tokenizer, texts: List[str], min_texts: int = MIN_TEXTS, min_share: float = MIN_SHARE) -> dict:
    """texts -> the manifest's text_end rule: the tokens ending enough of them, and how many texts those end."""
    if min_texts < 1 or not 0.0 <= min_share <= 1.0:
        raise ValueError(f"text_end: min_texts must be >= 1 and min_share in [0, 1] (got {min_texts}, {min_share})")
    seen: collections.Counter = collections.Counter()
    last: collections.Counter = collections.Counter()
    for text in texts:
        ids = tok.encode(text)
        if ids:
            seen.update(ids)
            last[ids[-1]] += 1
    if not last:
        raise ValueError("text_end: no texts to fit on")
    tokens = sorted(t for t, n in last.items() if n >= min_texts and n / seen[t] >= min_share)
    if not tokens:
        raise ValueError(f"text_end: no token ends {min_texts} or more of the {sum(last.values())} texts")
    return {"tokens": tokens, "min_texts": min_texts, "min_share": min_share, "texts": sum(last.values()),
            "covers": round(sum(last[t] for t in tokens) / sum(last.values()), 5)}


def corpus_rule(tok: Tokenizer, path: str, limit: Optional[int] = None, min_texts: int = MIN_TEXTS,
                min_share: float = MIN_SHARE) -> dict:
    """fit on the texts of a training corpus (its first `limit` examples; all without one), naming the file."""
    return {**fit(tok, [ex.text for ex in read_corpus(path, limit)], min_texts, min_share),
            "fitted_on": os.path.basename(path)}


def card_lines(rule: dict, tok: Tokenizer) -> List[str]:
    shown = ", ".join(f"`{tok.surface(t).strip() or repr(tok.surface(t))}`" for t in rule["tokens"][:12])
    return [f"Guided texts end only on one of {len(rule['tokens'])} tokens (manifest `text_end`): those that end at least "
            f"{rule['min_texts']} of the {rule['texts']:,} texts of {rule['fitted_on']} and at least {rule['min_share']:.1%} "
            f"of their occurrences; together they end {rule['covers']:.1%} of those texts. First of them by id: {shown}."]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="a bundle with a text segment")
    ap.add_argument("--corpus", required=True, help="the training corpus (CSV of mr,ref or JSONL); never the test files")
    ap.add_argument("--min-texts", type=int, default=MIN_TEXTS)
    ap.add_argument("--min-share", type=float, default=MIN_SHARE)
    args = ap.parse_args(argv)
    m = read_manifest(args.bundle)
    if not any(s["name"] == "text" for s in m["canvas"]["segments"]):
        raise SystemExit(f"{args.bundle}: the canvas has no text segment")
    if not os.path.isfile(args.corpus):
        raise SystemExit(f"--corpus {args.corpus}: no such file")
    tok = Tokenizer.load(os.path.join(args.bundle, m["tokenizer"]["vocab"]))
    try:
        rule = corpus_rule(tok, args.corpus, None, args.min_texts, args.min_share)
    except ValueError as e:
        raise SystemExit(f"--corpus/--min-texts/--min-share: {e}")
    set_card_section(args.bundle, CARD_HEADING, card_lines(rule, tok))
    add_files_and_rehash(args.bundle, ["DATA_CARD.md"], {"text_end": rule})
    print(f"{args.bundle}: text_end {len(rule['tokens'])} tokens, ending {rule['covers']:.1%} of {rule['texts']:,} texts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
