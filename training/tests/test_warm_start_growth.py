"""A warm start that grows the model (model.load_grown: identity layers, either family) and keeps the source's embedding table
(train.freeze_embeddings)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import torch

from training.dlm_train.masked import MaskedConfig, MaskedDenoiser
from training.dlm_train.model import Denoiser, ModelConfig, load_grown

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, "training", "fixtures", "e2e-train-slice.csv")


class GrownWarmStartTest(unittest.TestCase):
    def test_a_deeper_model_starts_as_the_shallower_one_and_refuses_other_shapes(self):
        torch.manual_seed(0)
        base = dict(vocab_size=30, length=12, d=4, hidden=16, heads=2, mlp_ratio=2, dropout=0.0, time_dim=8,
                    objective="ce", self_condition=True, clean_flags=True)
        small = Denoiser(ModelConfig(layers=1, **base))
        deep = Denoiser(ModelConfig(layers=3, **base))
        self.assertEqual(load_grown(deep, small.state_dict()), 2)
        x, t = torch.randn(2, 12, 4), torch.tensor([3.0, 900.0])
        with torch.no_grad():
            self.assertTrue(torch.allclose(small(x, t, torch.zeros_like(x), torch.zeros(2, 12)),
                                           deep(x, t, torch.zeros_like(x), torch.zeros(2, 12)), atol=1e-6))
        with self.assertRaisesRegex(ValueError, "more than model.layers"):
            load_grown(Denoiser(ModelConfig(layers=1, **base)), deep.state_dict())
        wider = Denoiser(ModelConfig(layers=2, **{**base, "hidden": 32}))
        with self.assertRaises((ValueError, RuntimeError)):
            load_grown(wider, small.state_dict())

    def test_a_deeper_masked_model_starts_as_the_shallower_one(self):
        torch.manual_seed(0)
        base = dict(vocab_size=30, length=12, hidden=16, heads=2, mlp_ratio=2)
        small = MaskedDenoiser(MaskedConfig(layers=2, **base))
        deep = MaskedDenoiser(MaskedConfig(layers=4, **base))
        ids = torch.randint(0, 31, (2, 12))
        with torch.no_grad():
            before = deep(ids)
            self.assertFalse(torch.allclose(small(ids), before, atol=1e-3))  # the two models differ until grown
        self.assertEqual(load_grown(deep, small.state_dict()), 2)
        with torch.no_grad():
            self.assertTrue(torch.allclose(small(ids), deep(ids), atol=1e-5))

    def test_a_grown_run_with_frozen_embeddings_keeps_the_sources_table_exactly(self):
        d = tempfile.mkdtemp()
        try:
            model = {"hidden": 16, "heads": 2, "mlp_ratio": 2, "time_dim": 8, "d": 4, "dropout": 0.0,
                     "objective": "ce", "self_condition": True, "clean_flags": True}
            train = {"batch_size": 8, "max_steps": 3, "ckpt_every": 3, "log_every": 1, "warmup": 1, "threads": 1,
                     "lr": 1e-2}
            env = {**os.environ, "PYTHONPATH": ROOT}

            def run(name, layers, **extra):
                cfg = os.path.join(d, f"{name}.json")
                with open(cfg, "w") as f:
                    json.dump({"name": name, "data": {"train": TRAIN, "limit": 100},
                               "model": {**model, "layers": layers}, "train": {**train, **extra}}, f)
                r = subprocess.run([sys.executable, "-m", "training.dlm_train.train", "--config", cfg, "--run-dir",
                                    os.path.join(d, name)], cwd=ROOT, env=env, capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                return r.stdout, torch.load(os.path.join(d, name, "ckpt.pt"), weights_only=False)

            _, src = run("src", 1)
            torch.save(src["ema"], os.path.join(d, "src.pt"))
            out, grown = run("grown", 2, init_from=os.path.join(d, "src.pt"), freeze_embeddings=True)
            self.assertIn("grown by 1 identity layer", out)
            self.assertTrue(torch.equal(grown["ema"]["emb.weight"], src["ema"]["emb.weight"]))
            self.assertTrue(torch.equal(grown["model"]["emb.weight"], src["ema"]["emb.weight"]))
            self.assertFalse(torch.equal(grown["ema"]["blocks.0.mlp.0.weight"], src["ema"]["blocks.0.mlp.0.weight"]))
        finally:
            shutil.rmtree(d)

    def test_a_warm_start_on_another_corpus_keeps_the_sources_vocabulary(self):
        d = tempfile.mkdtemp()
        try:
            model = {"hidden": 16, "heads": 2, "mlp_ratio": 2, "dropout": 0.0, "layers": 1}
            train = {"batch_size": 8, "max_steps": 2, "ckpt_every": 2, "log_every": 1, "warmup": 1, "threads": 1}
            env = {**os.environ, "PYTHONPATH": ROOT}

            def run(name, data, **extra):
                cfg = os.path.join(d, f"{name}.json")
                with open(cfg, "w") as f:
                    json.dump({"name": name, "family": "masked", "data": {"train": TRAIN, **data}, "model": model,
                               "train": {**train, **extra}}, f)
                r = subprocess.run([sys.executable, "-m", "training.dlm_train.train", "--config", cfg, "--run-dir",
                                    os.path.join(d, name)], cwd=ROOT, env=env, capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(os.path.join(d, name, "vocab.json")) as f:
                    return json.load(f), r.stdout

            src_vocab, _ = run("src", {"limit": 100, "min_count": 1})
            src = torch.load(os.path.join(d, "src", "ckpt.pt"), weights_only=False)
            torch.save(src["ema"], os.path.join(d, "src", "denoiser.pt"))  # as in a bundle: weights beside vocab.json
            with open(os.path.join(d, "src", "data.json")) as f:
                src_fields = json.load(f)["record_schema"]["fields"]
            # the source bundle's record schema knows a value the slice below may not
            with open(os.path.join(d, "src", "manifest.json"), "w") as f:
                json.dump({"record_schema": {"fields": {**src_fields, "area": [*src_fields.get("area", []), "Grantchester"]}}}, f)
            # another slice of the corpus would build another vocabulary (fewer texts, a higher count threshold)
            own_vocab, _ = run("own", {"limit": 30, "min_count": 2})
            self.assertNotEqual(own_vocab, src_vocab)
            warm_vocab, out = run("warm", {"limit": 30, "min_count": 2}, init_from=os.path.join(d, "src", "denoiser.pt"))
            self.assertIn("warm start from", out)
            self.assertEqual(warm_vocab, src_vocab)
            with open(os.path.join(d, "warm", "data.json")) as f:
                info = json.load(f)
            self.assertEqual(info["vocab_size"], len(src_vocab["tokens"]))
            # data.json describes the slice this run read, and keeps every value the source knew
            self.assertEqual(info["examples"], 30)
            self.assertIn("Grantchester", info["record_schema"]["fields"]["area"])
            for k, vals in src_fields.items():
                self.assertTrue(set(vals) <= set(info["record_schema"]["fields"][k]), k)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
