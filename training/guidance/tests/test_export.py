"""Exported gradient graphs agree with PyTorch autograd when run in onnxruntime-node (tiny configs, fast)."""
import os
import shutil
import subprocess
import tempfile
import unittest

import numpy as np
import torch

from training.guidance.export import export_grad_graph, reference, target_shape
from training.guidance.model import CONTROLS, ClassifierConfig, GuidanceClassifier
from training.guidance.ort import ROOT, run_onnx
from training.guidance.scorer import ScorerConfig, ScorerLM, export_scorer
from training.guidance.train_all import realistic_inputs


def have_ort() -> bool:
    if not shutil.which("node") or not os.path.isdir(os.path.join(ROOT, "node_modules", "onnxruntime-node")):
        return False
    r = subprocess.run(["node", "-e", "require('onnxruntime-node')"], cwd=ROOT, capture_output=True)
    return r.returncode == 0


def tiny_model(seed=0) -> GuidanceClassifier:
    torch.manual_seed(seed)
    cfg = ClassifierConfig(d=8, canvas_len=20, text_start=7, text_len=12, n_pos=19, n_spans=7,
                           fields=["eatType", "area", "near"], n_values=[3, 2, 5], hidden=16, layers=2, heads=2,
                           time_dim=16)
    m = GuidanceClassifier(cfg)
    with torch.no_grad():  # move away from the near-uniform initialisation so gradients are not tiny
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return m.eval()


@unittest.skipUnless(have_ort(), "node with onnxruntime-node is required")
class GradGraphTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.model = tiny_model()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_every_control_matches_autograd(self):
        m = self.model
        for c in CONTROLS:
            for B in (1, 3):
                with self.subTest(control=c, batch=B):
                    path = os.path.join(self.tmp, f"{c}.b{B}.onnx")
                    export_grad_graph(m, c, B, path)
                    ins = realistic_inputs(m, c, B, seed=B)
                    lp, g = reference(m, c, *ins)
                    names = ["x_t", "t", "target", "mask"][:len(ins)]
                    out = run_onnx(path, {n: v.numpy() for n, v in zip(names, ins)})
                    self.assertEqual(out["grad"].shape, (B, m.cfg.canvas_len, m.cfg.d))
                    self.assertEqual(out["logp"].shape, (B,))
                    self.assertGreater(float(g.abs().max()), 1e-4, "gradient too small to test anything")
                    np.testing.assert_allclose(out["grad"], g.numpy(), rtol=1e-4, atol=1e-6)
                    np.testing.assert_allclose(out["logp"], lp.numpy(), rtol=1e-5, atol=1e-5)
                    # only the text segment carries gradient
                    a, b = m.cfg.text_start, m.cfg.text_start + m.cfg.text_len
                    self.assertEqual(float(np.abs(out["grad"][:, :a]).max()), 0.0)
                    self.assertEqual(float(np.abs(out["grad"][:, b:]).max(initial=0.0)), 0.0)

    def test_joint_graph_is_the_sum_of_the_heads(self):
        """The all-controls graph: its gradient is the sum over controls of each control's gradient (one trunk pass),
        a zero target switches a control off, and it agrees with autograd."""
        from training.guidance.joint import check_joint_graph, example_inputs, export_joint_graph, input_names

        m = self.model
        B = 3
        path = os.path.join(self.tmp, "joint.b3.onnx")
        export_joint_graph(m, CONTROLS, B, path)
        chk = check_joint_graph(m, CONTROLS, path, B, seed=5)
        self.assertLess(chk["grad_max_abs_err"], 1e-4 * max(1.0, chk["grad_max_abs"]))
        ins = example_inputs(m, CONTROLS, B, seed=6)
        names = input_names(CONTROLS)
        feeds = {n: v.numpy() for n, v in zip(names, ins)}
        out = run_onnx(path, feeds)
        self.assertEqual(out["logp"].shape, (B, len(CONTROLS)))
        total = np.zeros_like(out["grad"])
        for c in CONTROLS:
            only = {n: (v if n in ("x_t", "t") or n.endswith("_" + c) else np.zeros_like(v)) for n, v in feeds.items()}
            part = run_onnx(path, only)
            one = [ins[0], ins[1], torch.from_numpy(feeds[f"target_{c}"])]
            if f"mask_{c}" in feeds:
                one.append(torch.from_numpy(feeds[f"mask_{c}"]))
            _, g = reference(m, c, *one)
            np.testing.assert_allclose(part["grad"], g.numpy(), rtol=1e-4, atol=1e-6)
            total += part["grad"]
        np.testing.assert_allclose(out["grad"], total, rtol=1e-4, atol=1e-6)

    def test_one_field_graph_matches_the_all_fields_heads(self):
        """The joint graph with one attribute slot: the slot's field comes from select_attribute, and the result equals
        the plain model with that target in the field's row (autograd); a zero select row switches attribute off."""
        from training.guidance.joint import check_joint_graph, example_inputs, export_joint_graph, input_names

        m = self.model
        B = 3
        path = os.path.join(self.tmp, "joint1.b3.onnx")
        export_joint_graph(m, CONTROLS, B, path, attribute_slots=1)
        chk = check_joint_graph(m, CONTROLS, path, B, seed=7, attribute_slots=1)
        self.assertGreater(chk["grad_max_abs"], 1e-4)
        self.assertLess(chk["grad_max_abs_err"], 1e-4 * max(1.0, chk["grad_max_abs"]))
        names = input_names(CONTROLS, attribute_slots=1)
        self.assertEqual(names.index("select_attribute") + 1, names.index("target_attribute"))
        feeds = {n: v.numpy() for n, v in zip(names, example_inputs(m, CONTROLS, B, seed=8, attribute_slots=1))}
        self.assertEqual(feeds["select_attribute"].shape, (B, 1, len(m.cfg.fields)))
        only_attr = {n: (v if n in ("x_t", "t") or n.endswith("_attribute") else np.zeros_like(v)) for n, v in feeds.items()}
        self.assertGreater(float(np.abs(run_onnx(path, only_attr)["grad"]).max()), 1e-5)
        no_field = dict(only_attr, select_attribute=np.zeros_like(feeds["select_attribute"]))
        out = run_onnx(path, no_field)
        self.assertTrue(np.all(np.isfinite(out["logp"])))
        self.assertLess(float(np.abs(out["grad"]).max()), 1e-7)

    def test_mask_and_batch_independence(self):
        m = self.model
        path = os.path.join(self.tmp, "pos.mask.b2.onnx")
        export_grad_graph(m, "pos", 2, path)
        x, t, target, mask = realistic_inputs(m, "pos", 2, seed=5)
        mask[1] = 0  # sample 1 has no target: logp 0 and no gradient
        x[1] = x[0]
        t[1] = t[0]
        out = run_onnx(path, {"x_t": x.numpy(), "t": t.numpy(), "target": target.numpy(), "mask": mask.numpy()})
        self.assertEqual(float(out["logp"][1]), 0.0)
        self.assertEqual(float(np.abs(out["grad"][1]).max()), 0.0)
        lp0, g0 = reference(m, "pos", x[:1], t[:1], target[:1], mask[:1])
        np.testing.assert_allclose(out["grad"][0], g0.numpy()[0], rtol=1e-4, atol=1e-6)

    def test_logp_is_log_probability_of_the_target(self):
        m = self.model
        x, t, target, mask = realistic_inputs(m, "attribute", 2, seed=9)
        lp, _ = reference(m, "attribute", x, t, target, mask)
        c = m.cfg
        with torch.no_grad():
            probs = torch.softmax(m.logits("attribute", x[:, c.text_start:c.text_start + c.text_len], t), -1)
        want = (torch.log((probs * target).sum(-1)) * mask).sum(-1)
        np.testing.assert_allclose(lp.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
        # classes a field does not have get (almost) no probability
        self.assertLess(float(probs[:, 1, 3:].max()), 1e-6)  # "area" has 2 values: classes 3.. are invalid

    def test_target_shapes(self):
        m = self.model
        self.assertEqual(target_shape(m, "pos", 8), ([8, 12, 19], [8, 12]))
        self.assertEqual(target_shape(m, "attribute", 1), ([1, 3, 6], [1, 3]))
        self.assertEqual(target_shape(m, "length", 8), ([8, 12], []))
        self.assertEqual(target_shape(m, "sentiment", 8), ([8, 3], []))
        with self.assertRaisesRegex(ValueError, "unknown control"):
            target_shape(m, "tree", 1)


@unittest.skipUnless(have_ort(), "node with onnxruntime-node is required")
class ScorerExportTest(unittest.TestCase):
    def test_dynamic_batch_and_length(self):
        torch.manual_seed(0)
        m = ScorerLM(ScorerConfig(vocab_size=50, max_len=16, hidden=16, layers=1, heads=2)).eval()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "scorer.onnx")
            export_scorer(m, path)
            for shape in [(1, 1), (3, 16), (2, 9)]:
                tok = torch.randint(0, 50, shape)
                with torch.no_grad():
                    ref = m(tok).numpy()
                out = run_onnx(path, {"tokens": tok.numpy()})["logits"]
                np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)

    def test_causal(self):
        torch.manual_seed(1)
        m = ScorerLM(ScorerConfig(vocab_size=50, max_len=16, hidden=16, layers=2, heads=2)).eval()
        a = torch.randint(0, 50, (1, 10))
        b = a.clone()
        b[0, 6:] = (b[0, 6:] + 1) % 50
        with torch.no_grad():
            la, lb = m(a), m(b)
        self.assertTrue(torch.allclose(la[0, :6], lb[0, :6], atol=1e-6))
        self.assertFalse(torch.allclose(la[0, 6:], lb[0, 6:], atol=1e-3))


if __name__ == "__main__":
    unittest.main()
