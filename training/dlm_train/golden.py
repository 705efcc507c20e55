"""Write the tokenizer fixtures the TypeScript tokenizer is checked against.

python3 -m training.dlm_train.golden [--train CSV] [--dev CSV] [--out tests/fixtures/tokenizer]

vocab.json: the vocabulary built from the training split (min_count 3), exactly as a bundle ships it.
dev-golden.jsonl: one line per dev-set row: the canonical record string and the reference text, each with its
pieces (pre-tokenization) and ids under that vocabulary.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Iterator

from .data import canonical_record, read_corpus, vocab_texts
from .paths import E2E_DATA
from .tokenizer import Tokenizer, build_vocab, pretokenize

DEFAULT_TRAIN = os.path.join(E2E_DATA, "trainset.csv")
DEFAULT_DEV = os.path.join(E2E_DATA, "devset.csv")


def golden_lines(tok: Tokenizer, dev_path: str) -> Iterator[str]:
    for i, ex in enumerate(read_corpus(dev_path)):
        rec = canonical_record(ex.record or {})
        row = {
            "row": i,
            "record": rec,
            "record_pieces": pretokenize(rec),
            "record_ids": tok.encode(rec),
            "text": ex.text,
            "text_pieces": pretokenize(ex.text),
            "text_ids": tok.encode(ex.text),
        }
        yield json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def derive(train_path: str, dev_path: str, min_count: int = 3):
    tok = build_vocab(vocab_texts(read_corpus(train_path)), min_count)
    return tok, list(golden_lines(tok, dev_path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", default=DEFAULT_TRAIN)
    ap.add_argument("--dev", default=DEFAULT_DEV)
    ap.add_argument("--out", default="tests/fixtures/tokenizer")
    args = ap.parse_args()
    tok, lines = derive(args.train, args.dev)
    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "vocab.json"))
    with open(os.path.join(args.out, "dev-golden.jsonl"), "w", encoding="utf-8") as f:
        for ln in lines:
            f.write(ln + "\n")
    print(f"vocab {len(tok)} tokens, {len(lines)} dev rows -> {args.out}")


if __name__ == "__main__":
    main()
