"""Surface-piece tokenizer (docs/ARCHITECTURE.md, "Tokenizer"). Must agree exactly with the TypeScript one.

Every token carries its exact surface text, so detokenizing is plain concatenation.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Dict, Iterable, List, Sequence

PAD, SEP, END, UNK = 0, 1, 2, 3
SPECIAL_NAMES = ["<pad>", "<sep>", "<end>", "<unk>"]
SPECIAL_SURFACES = ["", "", "", "\ufffd"]
SPECIALS = {"pad": PAD, "sep": SEP, "end": END, "unk": UNK}
OTHER_WS = "\t\n\r\f\v"
PRINTABLE_ASCII = [chr(c) for c in range(0x20, 0x7F)]


def char_class(ch: str) -> str:
    if ch == " ":
        return "S"
    if ch in OTHER_WS:
        return "W"
    if "0" <= ch <= "9":
        return "D"
    if ch.isalpha():
        return "L"
    return "P"


def pretokenize(s: str) -> List[str]:
    """Split into pieces: optional single leading space + maximal run of one class in L/D/P;
    a lone space (not followed by L/D/P) and every other-whitespace char are pieces on their own."""
    pieces: List[str] = []
    n = len(s)
    i = 0
    while i < n:
        c = char_class(s[i])
        if c == "W":
            pieces.append(s[i])
            i += 1
            continue
        start = i
        if c == "S":
            if i + 1 < n and char_class(s[i + 1]) in ("L", "D", "P"):
                i += 1
                c = char_class(s[i])
            else:
                pieces.append(" ")
                i += 1
                continue
        j = i + 1
        while j < n and char_class(s[j]) == c:
            j += 1
        pieces.append(s[start:j])
        i = j
    return pieces


class Tokenizer:
    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tokens[:4] != SPECIAL_NAMES:
            raise ValueError(f"vocab: tokens[0:4] must be {SPECIAL_NAMES}, got {tokens[:4]}")
        self.tokens = tokens
        self.index: Dict[str, int] = {}
        for i, t in enumerate(tokens[4:], start=4):
            if t in self.index:
                raise ValueError(f"vocab: duplicate token {t!r} at ids {self.index[t]} and {i}")
            self.index[t] = i

    def __len__(self) -> int:
        return len(self.tokens)

    def surface(self, i: int) -> str:
        return SPECIAL_SURFACES[i] if i < 4 else self.tokens[i]

    def encode_piece(self, piece: str) -> List[int]:
        i = self.index.get(piece)
        if i is not None:
            return [i]
        return [self.index.get(ch, UNK) for ch in piece]

    def encode(self, s: str) -> List[int]:
        out: List[int] = []
        for p in pretokenize(s):
            out.extend(self.encode_piece(p))
        return out

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.surface(int(i)) for i in ids)

    def to_json(self) -> dict:
        return {"tokens": self.tokens, "specials": dict(SPECIALS)}

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, ensure_ascii=False, indent=0)
            f.write("\n")

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
        if not isinstance(obj, dict) or not isinstance(obj.get("tokens"), list):
            raise ValueError(f"{path}: field 'tokens' must be a list of strings")
        if obj.get("specials") != SPECIALS:
            raise ValueError(f"{path}: field 'specials' must be {SPECIALS}")
        return cls(obj["tokens"])


def build_vocab(texts: Iterable[str], min_count: int = 3) -> Tokenizer:
    """Pieces with count >= min_count, every character seen, and printable ASCII as single characters.
    Order: by piece count (descending), then by code points; entries never seen as pieces come last."""
    piece_counts: Counter = Counter()
    chars = set(PRINTABLE_ASCII)
    for t in texts:
        for p in pretokenize(t):
            piece_counts[p] += 1
        chars.update(t)
    entries = {p for p, c in piece_counts.items() if c >= min_count} | chars
    ordered = sorted(entries, key=lambda p: (-piece_counts.get(p, 0), p))
    return Tokenizer(SPECIAL_NAMES + ordered)
