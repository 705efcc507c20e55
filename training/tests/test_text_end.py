"""text_end.py: the tokens a text may end on, fitted on training texts (manifest text_end)."""
import os
import tempfile
import unittest

from training.dlm_train import text_end
from training.dlm_train.bundle import add_files_and_rehash, read_manifest, verify_bundle, write_manifest
from training.dlm_train.data import read_corpus
from training.dlm_train.tokenizer import Tokenizer, build_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "training", "fixtures", "e2e-train-slice.csv")


class TextEndTest(unittest.TestCase):
    def setUp(self):
        self.tok = Tokenizer(["<pad>", "<sep>", "<end>", "<unk>", "It", " is", " near", " the", " river", ".", " good"])

    def ids(self, *pieces):
        return [self.tok.tokens.index(p) for p in pieces]

    def test_a_token_ends_texts_often_enough_or_not_at_all(self):
        texts = ["It is near the river."] * 6 + ["It is near the river"] * 3 + ["It is good"] * 2 + ["It is near the"]
        rule = text_end.fit(self.tok, texts, min_texts=2, min_share=0.2)
        # "." ends 6 texts, " river" 3 of its 9 occurrences, " good" 2 of 2; " the" ends one text: below min_texts
        self.assertEqual(rule["tokens"], sorted(self.ids(".", " river", " good")))
        self.assertEqual(rule["texts"], 12)
        self.assertAlmostEqual(rule["covers"], 11 / 12, places=4)
        # a higher share drops " river" (3 of 9)
        self.assertEqual(text_end.fit(self.tok, texts, min_texts=2, min_share=0.5)["tokens"], sorted(self.ids(".", " good")))
        with self.assertRaisesRegex(ValueError, "no token ends 20 or more"):
            text_end.fit(self.tok, texts, min_texts=20)
        with self.assertRaisesRegex(ValueError, "min_texts must be >= 1"):
            text_end.fit(self.tok, texts, min_texts=0)

    def test_the_command_writes_the_rule_and_its_card_section_into_a_bundle(self):
        with tempfile.TemporaryDirectory() as b:
            build_vocab([ex.text for ex in read_corpus(CORPUS)]).save(os.path.join(b, "vocab.json"))
            with open(os.path.join(b, "DATA_CARD.md"), "w", encoding="utf-8") as f:
                f.write("# card\n\n## What it is\n\nA model.\n")
            write_manifest(b, {"format": "dlm-bundle/1", "id": "t", "version": "1.0.0", "files": [],
                               "tokenizer": {"vocab": "vocab.json"},
                               "canvas": {"length": 8, "segments": [{"name": "text", "start": 0, "length": 8}]}})
            add_files_and_rehash(b, ["vocab.json", "DATA_CARD.md"])
            self.assertEqual(text_end.main(["--bundle", b, "--corpus", CORPUS]), 0)
            m = read_manifest(b)
            verify_bundle(b)
            tok = Tokenizer.load(os.path.join(b, m["tokenizer"]["vocab"]))
            self.assertIn(tok.tokens.index("."), m["text_end"]["tokens"])
            self.assertTrue(all(0 <= t < len(tok) for t in m["text_end"]["tokens"]))
            self.assertEqual(m["text_end"]["fitted_on"], "e2e-train-slice.csv")
            with open(os.path.join(b, "DATA_CARD.md"), encoding="utf-8") as f:
                self.assertIn("## Where a guided text may end", f.read())
            with self.assertRaises(SystemExit):
                text_end.main(["--bundle", b, "--corpus", os.path.join(b, "missing.csv")])


if __name__ == "__main__":
    unittest.main()
