import gzip
import json
import os
import tempfile
import unittest

from training.dlm_train.data import CanvasLayout, read_corpus, vocab_texts
from training.dlm_train.tokenizer import Tokenizer, build_vocab
from training.guidance.labels import (POS_LABELS, SPAN_LABELS, build_guidance_data, load_label_file, text_sha1,
                                      token_char_spans, token_chunks, token_pos)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LABELS = os.path.join(ROOT, "training", "labels")
DEV_SLICE = os.path.join(ROOT, "training", "fixtures", "e2e-dev-slice.csv")  # first 200 rows of devset.csv


class AlignmentTest(unittest.TestCase):
    def setUp(self):
        # "Blue" is in the vocabulary, "Spice" is not (encoded per character)
        self.tok = Tokenizer(["<pad>", "<sep>", "<end>", "<unk>", "The", " Blue", " ", "."] + list("Spice"))

    def test_char_spans_follow_encode(self):
        text = "The Blue  Spice."
        ids = self.tok.encode(text)
        spans = token_char_spans(self.tok, text)
        self.assertEqual(len(spans), len(ids))
        self.assertEqual([text[a:b] for a, b in spans], [self.tok.surface(i) for i in ids])

    def test_piece_takes_tag_of_first_non_space_char(self):
        text = "The Blue  Spice."
        # wink-style codes: The=DET(F) Blue=PROPN(L) Spice=PROPN(L) .=PUNCT(M), '_' on spaces
        codes = "FFF_LLLL__LLLLLM"
        decode = {"F": "DET", "L": "PROPN", "M": "PUNCT"}
        spans = token_char_spans(self.tok, text)
        tags = token_pos(text, spans, codes, decode)
        surf = [text[a:b] for a, b in spans]
        self.assertEqual(list(zip(surf, tags))[:4], [("The", "DET"), (" Blue", "PROPN"), (" ", "SPACE"), (" ", "SPACE")])
        self.assertEqual(tags[4:], ["PROPN"] * 5 + ["PUNCT"])

    def test_bio_chunks(self):
        text = "The Blue  Spice."
        spans = token_char_spans(self.tok, text)
        bio = token_chunks(text, spans, [[0, 15, "NP"]])
        self.assertEqual(bio, ["B-NP"] + ["I-NP"] * 8 + ["O"])  # the double space inside the chunk continues it
        bio2 = token_chunks(text, spans, [[0, 3, "NP"], [4, 8, "NP"]])
        self.assertEqual(bio2[:2], ["B-NP", "B-NP"])
        self.assertEqual(bio2[2:], ["O"] * 8)


class LabelFileTest(unittest.TestCase):
    def test_committed_dev_labels_match_corpus(self):
        meta, rows = load_label_file(os.path.join(LABELS, "e2e-dev.jsonl.gz"))
        ex = read_corpus(DEV_SLICE)
        self.assertEqual(meta["rows"], 4672)
        self.assertEqual(len(rows), 4672)
        for i in range(len(ex)):
            self.assertEqual(rows[i]["sha1"], text_sha1(ex[i].text))
            self.assertEqual(len(rows[i]["pos"]), len(ex[i].text))
        self.assertEqual(set(meta["sentiment_counts"]), {"negative", "neutral", "positive"})

    def test_missing_meta_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.jsonl.gz")
            with gzip.open(p, "wt") as f:
                f.write(json.dumps({"i": 0, "sha1": "x", "pos": "", "chunks": [], "sentiment": "neutral"}) + "\n")
            with self.assertRaisesRegex(ValueError, "no meta line"):
                load_label_file(p)

    def test_guidance_data_targets(self):
        ex = read_corpus(DEV_SLICE)
        tok = build_vocab(vocab_texts(ex), min_count=2)
        lay = CanvasLayout(96, 44)
        vl = {"eatType": ["coffee shop", "pub", "restaurant"], "area": ["city centre", "riverside"]}
        gd = build_guidance_data(tok, lay, ex, os.path.join(LABELS, "e2e-dev.jsonl.gz"), vl)
        self.assertGreater(len(gd.ids), 150)
        pad = POS_LABELS.index("PAD")
        for r in range(len(gd.ids)):
            n = int(gd.length[r])
            self.assertEqual(int(gd.ids[r, lay.text_start + n]), 2)  # <end> right after the text
            self.assertTrue((gd.pos[r, n:] == pad).all())
            self.assertTrue((gd.pos[r, :n] != pad).all())
            self.assertTrue((gd.spans[r, n:] == 0).all())
            # an I- tag never follows O directly
            for j in range(1, n):
                lab = SPAN_LABELS[gd.spans[r, j]]
                if lab.startswith("I-"):
                    self.assertNotEqual(SPAN_LABELS[gd.spans[r, j - 1]], "O")
        # attribute classes: 0 when the record lacks the field, else 1 + index of the value
        self.assertTrue(((gd.attr >= 0) & (gd.attr <= 3)).all())
        self.assertTrue((gd.attr[:, 1] <= 2).all())


if __name__ == "__main__":
    unittest.main()
