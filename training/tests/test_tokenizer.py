import json
import os
import unittest

from training.dlm_train.data import canonical_record, parse_mr
from training.dlm_train.golden import DEFAULT_DEV, DEFAULT_TRAIN, derive
from training.dlm_train.tokenizer import UNK, Tokenizer, build_vocab, pretokenize

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures", "tokenizer")


class PretokenizeTest(unittest.TestCase):
    def test_examples_from_architecture(self):
        self.assertEqual(pretokenize('{"name":"The Vaults"}'), ['{"', "name", '":"', "The", " Vaults", '"}'])
        self.assertEqual(pretokenize("£20-25"), ["£", "20", "-", "25"])

    def test_spaces_and_other_whitespace(self):
        self.assertEqual(pretokenize("a  b \t c "), ["a", " ", " b", " ", "\t", " c", " "])
        self.assertEqual(pretokenize("x\n\ny"), ["x", "\n", "\n", "y"])
        self.assertEqual(pretokenize(" 12ab"), [" 12", "ab"])

    def test_unicode_letters_and_digits(self):
        self.assertEqual(pretokenize("Café Brazil"), ["Café", " Brazil"])
        self.assertEqual(pretokenize("x٣"), ["x", "٣"])  # non-ASCII digit is class P


class EncodeTest(unittest.TestCase):
    def test_fallback_and_roundtrip(self):
        tok = build_vocab(["the cat", "the cat", "the cat"], min_count=3)
        self.assertIn(" cat", tok.index)
        ids = tok.encode("the dog!")
        self.assertEqual(tok.decode(ids), "the dog!")
        self.assertEqual(len(ids), 1 + 4 + 1)  # "the", then " dog" spelled " ","d","o","g", then "!"
        self.assertEqual(tok.encode("é")[0], UNK)
        self.assertEqual(tok.decode(tok.encode("é")), "\ufffd")

    def test_vocab_file_roundtrip(self):
        tok = build_vocab(["a b c"], min_count=1)
        self.assertEqual(tok.tokens[:4], ["<pad>", "<sep>", "<end>", "<unk>"])
        for ch in map(chr, range(0x20, 0x7F)):
            self.assertIn(ch, tok.index)
        with self.assertRaises(ValueError):
            Tokenizer(["a", "b", "c", "d"])

    def test_parse_mr(self):
        rec = parse_mr("name[The Vaults], near[Café Adriatic], eatType[pub]")
        self.assertEqual(canonical_record(rec), '{"name":"The Vaults","eatType":"pub","near":"Café Adriatic"}')
        with self.assertRaises(ValueError):
            parse_mr("name[x], broken")


@unittest.skipUnless(os.path.exists(DEFAULT_TRAIN), "E2E data not present")
class GoldenTest(unittest.TestCase):
    def test_fixture_matches_rederived(self):
        tok, lines = derive(DEFAULT_TRAIN, DEFAULT_DEV)
        with open(os.path.join(FIX, "vocab.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f), tok.to_json())
        with open(os.path.join(FIX, "dev-golden.jsonl"), encoding="utf-8") as f:
            golden = [ln.rstrip("\n") for ln in f]
        self.assertEqual(len(golden), len(lines))
        self.assertGreater(len(golden), 4000)
        for a, b in zip(golden, lines):
            self.assertEqual(a, b)
        for ln in lines[:500]:
            row = json.loads(ln)
            self.assertEqual("".join(row["text_pieces"]), row["text"])
            if UNK not in row["text_ids"]:
                self.assertEqual(tok.decode(row["text_ids"]), row["text"])


if __name__ == "__main__":
    unittest.main()
