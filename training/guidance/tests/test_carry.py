"""carry.py: a new denoiser with the same embedding table takes the old bundle's guidance files and manifest fields;
another table or vocabulary is refused by name."""
import json
import os
import tempfile
import unittest

import numpy as np

from training.dlm_train.bundle import add_files_and_rehash, verify_bundle, write_manifest
from training.guidance.carry import carry


def make_bundle(d, emb=np.full(4, 1.0, dtype="<f4").tobytes(), guidance=False):
    os.makedirs(os.path.join(d, "classifiers"), exist_ok=True)
    files = {"vocab.json": b'{"tokens": []}', "embeddings.f32": emb, "denoiser.onnx": os.urandom(8),
             "DATA_CARD.md": b"# card\n\n## What it is\n\nA model.\n"}
    m = {"format": "dlm-bundle/1", "id": os.path.basename(d), "version": "1.0.0",
         "tokenizer": {"vocab": "vocab.json"}, "embedding": {"file": "embeddings.f32"}, "files": [],
         "classifiers": [], "scorer": None}
    if guidance:
        files.update({"classifiers/pos.b1.onnx": b"pos", "classifiers/joint.b1.onnx": b"joint",
                      "classifiers/joint1.b1.onnx": b"joint1", "classifiers/pos.lexicon.f32": b"lex",
                      "scorer.onnx": b"scorer"})
        files["DATA_CARD.md"] += b"\n## Token label lexicons\n\nPOS lexicon.\n"
        m.update({"classifiers": [{"control": "pos", "files": {"1": "classifiers/pos.b1.onnx"}}],
                  "joint_guidance": {"files": {"1": "classifiers/joint.b1.onnx"},
                                     "one_field": {"files": {"1": "classifiers/joint1.b1.onnx"}}},
                  "lexicons": [{"control": "pos", "file": "classifiers/pos.lexicon.f32"}],
                  "scorer": {"file": "scorer.onnx"}, "sampler_defaults": {"steps": 40, "accept_at": 0.9}})
    for rel, data in files.items():
        with open(os.path.join(d, rel), "wb") as f:
            f.write(data)
    write_manifest(d, m)
    add_files_and_rehash(d, list(files))


class CarryTest(unittest.TestCase):
    def test_guidance_moves_to_a_bundle_with_the_same_table_and_nowhere_else(self):
        with tempfile.TemporaryDirectory() as root:
            old, new, other = (os.path.join(root, n) for n in ("old", "new", "other"))
            make_bundle(old, guidance=True)
            make_bundle(new)
            rounded = os.path.join(root, "rounded")
            make_bundle(rounded, emb=np.full(4, 1.0 + 1e-4, dtype="<f4").tobytes())
            m = carry(old, new)
            verify_bundle(new)
            self.assertEqual(m["classifiers"][0]["control"], "pos")
            self.assertEqual(m["scorer"], {"file": "scorer.onnx"})
            self.assertNotIn("sampler_defaults", m)  # measured on the old denoiser: carried only when asked
            listed = {f["path"] for f in m["files"]}
            self.assertTrue({"classifiers/pos.b1.onnx", "classifiers/joint1.b1.onnx", "classifiers/pos.lexicon.f32",
                             "scorer.onnx", "denoiser.onnx"} <= listed)
            with open(os.path.join(new, "classifiers", "joint.b1.onnx"), "rb") as f:
                self.assertEqual(f.read(), b"joint")
            with open(os.path.join(new, "DATA_CARD.md")) as f:
                card = f.read()
            self.assertIn("POS lexicon.", card)
            self.assertIn("Carried from old 1.0.0", card)
            # carried on again: the section names its latest source once
            newer = os.path.join(root, "newer")
            make_bundle(newer)
            carry(new, newer)
            with open(os.path.join(newer, "DATA_CARD.md")) as f:
                card = f.read()
            self.assertIn("POS lexicon.", card)
            self.assertEqual(card.count("(Carried from "), 1, card)
            self.assertIn("(Carried from new 1.0.0", card)
            carry(old, rounded)  # float16 rounding of the same table is the same table
            self.assertEqual(carry(old, rounded, sampler_defaults=True)["sampler_defaults"], {"steps": 40, "accept_at": 0.9})
            verify_bundle(rounded)
            make_bundle(other, emb=np.full(4, 1.01, dtype="<f4").tobytes())
            with self.assertRaisesRegex(ValueError, r"embedding.file \(embeddings.f32\) differs"):
                carry(old, other)
            with open(os.path.join(other, "manifest.json")) as f:
                self.assertEqual(json.load(f)["classifiers"], [])  # nothing half-carried


if __name__ == "__main__":
    unittest.main()
