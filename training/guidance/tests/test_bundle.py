import json
import os
import shutil
import tempfile
import unittest

from training.dlm_train.bundle import FORMAT, add_files_and_rehash, verify_bundle, write_manifest
from training.guidance.bundle import take_scorer


def make_bundle(d: str, vocab: str, scorer: bytes = b"") -> dict:
    os.makedirs(d)
    with open(os.path.join(d, "vocab.json"), "w") as f:
        f.write(vocab)
    man = {"format": FORMAT, "id": os.path.basename(d), "tokenizer": {"vocab": "vocab.json"}, "files": [], "scorer": None}
    files = ["vocab.json"]
    if scorer:
        with open(os.path.join(d, "lm.onnx"), "wb") as f:
            f.write(scorer)
        man["scorer"] = {"file": "lm.onnx", "metrics": {"dev_perplexity": 5.5}}
        files.append("lm.onnx")
    write_manifest(d, man)
    return add_files_and_rehash(d, files)


class TakeScorerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_copies_the_scorer_of_a_bundle_with_the_same_vocabulary(self):
        src, dst = os.path.join(self.dir, "src"), os.path.join(self.dir, "dst")
        make_bundle(src, '["a","b"]', scorer=b"graph bytes")
        man = make_bundle(dst, '["a","b"]')
        take_scorer(dst, man, src)
        with open(os.path.join(dst, "manifest.json")) as f:
            out = json.load(f)
        self.assertEqual(out["scorer"]["file"], "scorer.onnx")
        self.assertIn("src", out["scorer"]["source"])
        self.assertEqual(out["scorer"]["metrics"]["dev_perplexity"], 5.5)
        with open(os.path.join(dst, "scorer.onnx"), "rb") as f:
            self.assertEqual(f.read(), b"graph bytes")
        verify_bundle(dst)  # listed and hashed

    def test_refuses_another_vocabulary_or_a_bundle_without_scorer(self):
        src, dst, bare = (os.path.join(self.dir, n) for n in ("src", "dst", "bare"))
        make_bundle(src, '["a","b"]', scorer=b"graph bytes")
        make_bundle(bare, '["a","b"]')
        man = make_bundle(dst, '["a","c"]')
        with self.assertRaisesRegex(ValueError, "vocab.json differs"):
            take_scorer(dst, man, src)
        with self.assertRaisesRegex(ValueError, "no scorer to take"):
            take_scorer(dst, man, bare)
        self.assertFalse(os.path.exists(os.path.join(dst, "scorer.onnx")))


if __name__ == "__main__":
    unittest.main()
