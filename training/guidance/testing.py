"""A small random bundle for tests and the CI smoke check (random embeddings; real vocabulary from a corpus slice)."""
from __future__ import annotations

import json
import os

import numpy as np

from training.dlm_train.data import CanvasLayout, read_corpus, record_schema, vocab_texts
from training.dlm_train.tokenizer import build_vocab


def make_random_bundle(out: str, train_csv: str, limit: int = 2000, d: int = 16, length: int = 96,
                       record_len: int = 44, seed: int = 0) -> str:
    os.makedirs(out, exist_ok=True)
    ex = read_corpus(train_csv, limit=limit)
    tok = build_vocab(vocab_texts(ex), min_count=3)
    tok.save(os.path.join(out, "vocab.json"))
    rng = np.random.default_rng(seed)
    rng.standard_normal((len(tok), d)).astype("<f4").tofile(os.path.join(out, "embeddings.f32"))
    layout = CanvasLayout(length, record_len)
    man = {
        "format": "dlm-bundle/1", "id": "guidance-test", "version": "0.0.0", "kind": "continuous-embedding-diffusion",
        "name": "random embeddings (guidance tests)",
        "tokenizer": {"type": "surface-pieces/1", "vocab": "vocab.json", "size": len(tok)},
        "canvas": layout.to_json(), "embedding": {"file": "embeddings.f32", "dim": d, "dtype": "float32"},
        "schedule": {"type": "sqrt", "T": 2000, "s": 0.0001},
        "record_schema": {"fields": record_schema(ex)},
        "files": [{"path": "vocab.json"}, {"path": "embeddings.f32"}], "metrics": {}, "classifiers": [], "scorer": None,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(man, f, ensure_ascii=False, indent=2)
    with open(os.path.join(out, "DATA_CARD.md"), "w", encoding="utf-8") as f:
        f.write("# Test bundle\n\nRandom embeddings, for tests only.\n")
    return out
