"""Classifiers on masked canvases (training/guidance/masked.py): the exported graphs give the gradient with respect to
the one-hot token inputs that autograd gives through an explicit one-hot, in onnxruntime-node; the masking covers
both ways the sampler leaves a canvas; and the command writes a bundle the engine's manifest rules accept."""
import json
import os
import shutil
import tempfile
import unittest

import numpy as np
import torch

from training.guidance import masked as M
from training.guidance.model import CONTROLS
from training.guidance.ort import ROOT, run_onnx
from training.guidance.tests.test_export import have_ort

BUNDLE = os.path.join(ROOT, "models", "e2e-masked")


def tiny(seed=0) -> M.MaskedGuidanceClassifier:
    torch.manual_seed(seed)
    cfg = M.MaskedClassifierConfig(d=0, canvas_len=20, text_start=7, text_len=12, n_pos=19, n_spans=7,
                                   fields=["eatType", "area", "near"], n_values=[3, 2, 5], hidden=16, layers=2,
                                   heads=2, vocab_size=30, mask_id=29, block=4)
    m = M.MaskedGuidanceClassifier(cfg)
    with torch.no_grad():  # away from the near-uniform initialisation, so gradients are not tiny
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return m.eval()


class LexiconTest(unittest.TestCase):
    def test_counts_smoothed_toward_the_overall_labels_and_unseen_tokens_floored(self):
        from training.guidance.lexicon import FLOOR, lexicon
        # token 1: label 0 three times, label 1 once; token 2: label 1 four times; token 0 never seen
        ids = np.array([[1, 1, 1, 1], [2, 2, 2, 2]])
        labels = np.array([[0, 0, 0, 1], [1, 1, 1, 1]])
        t = lexicon(ids, labels, vocab=3, n_labels=2, prior=1.0)
        overall = np.array([3, 5]) / 8
        self.assertTrue(np.allclose(np.exp(t[1]), (np.array([3, 1]) + overall) / 5, atol=1e-6))
        self.assertTrue(np.allclose(np.exp(t[2]), (np.array([0, 4]) + overall) / 5, atol=1e-6))
        self.assertTrue(np.allclose(t[0], np.log(FLOOR)))
        self.assertEqual(t.dtype, np.dtype("<f4"))


class MaskingTest(unittest.TestCase):
    def test_both_masking_kinds_occur_and_keep_unmasked_tokens(self):
        model = tiny()
        ids = torch.randint(0, 29, (400, 12), generator=torch.Generator().manual_seed(1))
        out = M.mask_canvases(ids, model.cfg, torch.Generator().manual_seed(2))
        masked = out == 29
        self.assertTrue(torch.equal(out[~masked], ids[~masked]))
        share = masked.float().mean(1)
        self.assertGreater(float(share.std()), 0.2)  # rates spread over (0, 1)
        # left-to-right rows: after the first masked position beyond the partly filled block, all masked
        suffix = [bool(masked[r, int(masked[r].nonzero()[0]) + 4:].all()) for r in range(400) if masked[r].any()]
        self.assertGreater(sum(suffix), 100)
        self.assertLess(sum(suffix), len(suffix))  # and independent rows too


@unittest.skipUnless(have_ort(), "node with onnxruntime-node is required")
class MaskedGraphTest(unittest.TestCase):
    def test_per_control_and_joint_graphs_match_autograd_through_one_hot(self):
        model = tiny()
        with tempfile.TemporaryDirectory() as d:
            for controls in [[c] for c in CONTROLS] + [CONTROLS]:
                path = os.path.join(d, "g.onnx")
                M.export_graph(model, controls, 3, path)
                chk = M.check_graph(model, controls, path, 3, seed=5)
                self.assertGreater(chk["grad_max_abs"], 1e-3, controls)
                self.assertLess(chk["grad_max_abs_err"], 1e-4 * max(1.0, chk["grad_max_abs"]), controls)
                self.assertLess(chk["logp_max_abs_err"], 1e-3, controls)
                self.assertEqual(tuple(chk["grad"].shape), (3, 12, 30))

    def test_taylor_estimate_points_the_way_of_the_exact_change(self):
        """At each text position, the token the gradient ranks first gives a higher log p when put there than the
        token it ranks last, at most positions (a first-order estimate, so not necessarily at all)."""
        model = tiny(3)
        ins = M.example_inputs(model, ["sentiment"], 1, seed=9)
        ids = ins[0]
        _, g = M.reference(model, ["sentiment"], ids, *ins[1:])

        def logp_with(pos, v):
            x = ids.clone()
            x[0, pos] = v
            return float(M.reference(model, ["sentiment"], x, *ins[1:])[0][0])

        right = sum(logp_with(7 + i, int(torch.argmax(g[0, i, :29]))) > logp_with(7 + i, int(torch.argmin(g[0, i, :29])))
                    for i in range(12))
        self.assertGreaterEqual(right, 9)

    @unittest.skipUnless(os.path.exists(os.path.join(BUNDLE, "manifest.json")), "models/e2e-masked is absent")
    def test_command_writes_entries_the_engine_reads(self):
        """--tiny on a copy of the masked bundle's manifest and vocabulary: 5 classifier entries and a joint graph
        that read ids and return the one-hot gradient, files listed with their hashes."""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(BUNDLE, "manifest.json"), encoding="utf-8") as f:
                man = json.load(f)
            shutil.copy(os.path.join(BUNDLE, man["tokenizer"]["vocab"]), d)
            man["files"] = [x for x in man["files"] if x["path"] == man["tokenizer"]["vocab"]]
            man["classifiers"] = []
            man.pop("joint_guidance", None)
            man.pop("lexicons", None)
            with open(os.path.join(d, "manifest.json"), "w", encoding="utf-8") as f:
                json.dump(man, f)
            self.assertEqual(M.main(["--bundle", d, "--tiny", "--threads", "1"]), 0)
            with open(os.path.join(d, "manifest.json"), encoding="utf-8") as f:
                out = json.load(f)
            self.assertEqual([e["control"] for e in out["classifiers"]], CONTROLS)
            listed = {x["path"] for x in out["files"]}
            N = out["canvas"]["length"]
            for e in out["classifiers"] + [out["joint_guidance"]]:
                self.assertEqual(e["inputs"]["ids"], f"int64[B,{N}]")
                self.assertRegex(e["outputs"]["grad"], r"^float32\[B,51,1792\]$")
                for rel in e["files"].values():
                    self.assertIn(rel, listed)
                    self.assertTrue(os.path.exists(os.path.join(d, rel)))
            # the token label lexicons are written beside the graphs, one row per token, with their weights
            self.assertEqual([e["control"] for e in out["lexicons"]], ["pos", "spans"])
            for e in out["lexicons"]:
                self.assertIn(e["file"], listed)
                table = np.fromfile(os.path.join(d, e["file"]), dtype="<f4").reshape(e["shape"])
                self.assertEqual(table.shape, (out["tokenizer"]["size"], len(e["labels"])))
                self.assertTrue(np.allclose(np.exp(table[[t for t in range(table.shape[0]) if table[t].max() > -20]]).sum(1), 1, atol=1e-4))
                self.assertGreater(e["weight"], 0)
            # a graph of the bundle runs on a real partly masked canvas
            rel = out["joint_guidance"]["files"]["1"]
            ids = np.full((1, N), out["mask"]["id"], dtype=np.int64)
            feeds = {"ids": ids}
            for name, spec in out["joint_guidance"]["inputs"].items():
                if name != "ids":
                    dims = [1] + [int(x) for x in spec[spec.index("[") + 3:-1].split(",")]
                    feeds[name] = np.zeros(dims, dtype=np.float32)
            feeds["target_length"][0, 20] = 1.0
            res = run_onnx(os.path.join(d, rel), feeds)
            self.assertEqual(res["grad"].shape, (1, 51, 1792))
            self.assertTrue(np.isfinite(res["grad"]).all())
            # the forward-only copy for exact re-scoring (the largest batch size): listed, log p alone, the same log p
            logp = out["joint_guidance"]["logp"]
            self.assertEqual(logp["batch_sizes"], [8])
            self.assertIn(logp["files"]["8"], listed)
            feeds8 = {k: np.repeat(v, 8, axis=0) for k, v in feeds.items()}
            feeds8["ids"][3, 50:60] = 7  # rows that differ
            cut = run_onnx(os.path.join(d, logp["files"]["8"]), feeds8)
            self.assertEqual(sorted(cut), ["logp"])
            full = run_onnx(os.path.join(d, out["joint_guidance"]["files"]["8"]), feeds8)["logp"]
            np.testing.assert_allclose(cut["logp"], full, rtol=1e-5, atol=1e-5)
            self.assertNotEqual(float(np.abs(cut["logp"][3] - cut["logp"][0]).max()), 0.0)
            # --control-batch-sizes none: the joint graph alone; the entries describe the heads, with no graph files
            self.assertEqual(M.main(["--bundle", d, "--tiny", "--threads", "1", "--control-batch-sizes", "none"]), 0)
            with open(os.path.join(d, "manifest.json"), encoding="utf-8") as f:
                joint_only = json.load(f)
            self.assertEqual([(e["files"], e["batch_sizes"]) for e in joint_only["classifiers"]], [({}, [])] * len(CONTROLS))
            self.assertEqual(sorted(joint_only["joint_guidance"]["controls"]), sorted(CONTROLS))
            self.assertFalse(any(os.path.exists(os.path.join(d, "classifiers", f"{c}.b1.onnx")) for c in CONTROLS))
            self.assertEqual(sorted(x["path"] for x in joint_only["files"] if x["path"].endswith(".onnx")),
                             sorted([*joint_only["joint_guidance"]["files"].values(), *joint_only["joint_guidance"]["logp"]["files"].values()]))


if __name__ == "__main__":
    unittest.main()
