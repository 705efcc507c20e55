"""The record -> text length rule (text_length.py) and the reference sampler's held length for data-to-text."""
import os
import unittest

import numpy as np
import torch

from training.dlm_train import sample as S
from training.dlm_train import text_length as TL
from training.dlm_train.data import CanvasLayout
from training.dlm_train.model import Denoiser, ModelConfig
from training.dlm_train.tokenizer import END, PAD, build_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, "training", "fixtures", "e2e-train-slice.csv")


class TextLengthRuleTest(unittest.TestCase):
    def test_the_fit_recovers_a_line_and_moves_to_the_residual_quantile(self):
        pairs = [(r, 2 * r + 3 + e) for r in range(5, 30) for e in (-2, 0, 2)]
        median = TL.fit(pairs, 0.5)
        self.assertAlmostEqual(median["per_record_token"], 2.0, places=4)
        self.assertAlmostEqual(median["intercept"], 3.0, places=4)
        upper = TL.fit(pairs, 0.9)
        self.assertGreater(upper["intercept"], median["intercept"] + 1.0)
        self.assertEqual(upper["examples"], len(pairs))
        self.assertEqual(median["typical_tokens"], int(np.round(np.median([t for _, t in pairs]))))
        self.assertEqual(TL.fit([(1, 5), (2, 9), (3, 40)])["typical_tokens"], 9)
        with self.assertRaisesRegex(ValueError, "quantile"):
            TL.fit(pairs, 1.0)
        with self.assertRaisesRegex(ValueError, "different record lengths"):
            TL.fit([(4, 9), (4, 11)])

    def test_predict_rounds_half_up_and_stays_inside_the_text_segment(self):
        rule = {"intercept": 0.5, "per_record_token": 1.0}
        self.assertEqual(TL.predict(rule, 3, 20), 4)  # 3.5, as the engine's Math.round
        self.assertEqual(TL.predict(rule, 40, 20), 19)
        self.assertEqual(TL.predict({"intercept": -9.0, "per_record_token": 1.0}, 1, 20), 1)

    def test_a_corpus_fit_predicts_e2e_lengths_within_a_few_tokens(self):
        from training.dlm_train.data import read_corpus
        tok = build_vocab([ex.text for ex in read_corpus(TRAIN)] + [str(ex.record) for ex in read_corpus(TRAIN)], 1)
        rule = TL.fit(TL.corpus_pairs(tok, TRAIN), 0.5)
        self.assertGreater(rule["per_record_token"], 0.3)
        self.assertLess(rule["mean_abs_error_tokens"], 8.0)


class TextLengthCliTest(unittest.TestCase):
    def test_a_bundle_whose_denoiser_does_not_hold_a_length_is_refused_by_name(self):
        import json
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "manifest.json"), "w") as f:
                json.dump({"format": "dlm-bundle/1", "denoiser": {}, "tokenizer": {"vocab": "vocab.json"},
                           "canvas": {"segments": [{"name": "record"}, {"name": "text"}]}, "files": []}, f)
            with self.assertRaisesRegex(SystemExit, "does not hold a length"):
                TL.main(["--bundle", d, "--corpus", TRAIN])


class HeldLengthReferenceTest(unittest.TestCase):
    def test_data_to_text_holds_end_where_the_rule_says_and_bars_end_and_pad_before_it(self):
        from training.dlm_train.data import read_corpus
        exs = list(read_corpus(TRAIN))
        tok = build_vocab([ex.text for ex in exs] + [str(ex.record) for ex in exs], 1)
        torch.manual_seed(0)
        cfg = ModelConfig(vocab_size=len(tok), length=48, d=8, hidden=16, layers=1, heads=2, mlp_ratio=2, dropout=0.0,
                          time_dim=16, objective="ce", self_condition=True, clean_flags=True)
        ref = S.from_model(Denoiser(cfg), tok, CanvasLayout(48, 24))
        record = {"name": "The Vaults", "eatType": "pub"}
        free_ids, free_held = S.held_canvas(ref, record)
        self.assertFalse(free_held[ref.layout.text_start:].any())
        ref.text_length = {"intercept": 2.0, "per_record_token": 0.5}
        ids, held = S.held_canvas(ref, record)
        record_tokens = int((free_ids[:ref.layout.record_len] != PAD).sum())
        n = TL.predict(ref.text_length, record_tokens, ref.layout.text_len)
        start = ref.layout.text_start
        self.assertEqual(ids[start + n], END)
        self.assertTrue((ids[start + n + 1:] == PAD).all() and held[start + n:].all() and not held[start:start + n].any())
        out = S.sample(ref, 3, steps=5, seed=1, given=ids, held=held)
        for row in out:
            self.assertEqual(row[start + n], END)
            self.assertFalse(np.isin(row[start:start + n], [END, PAD] + S.whitespace_ids(tok)).any())


if __name__ == "__main__":
    unittest.main()
