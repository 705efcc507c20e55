import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import torch

from training.dlm_train import sample as S
from training.dlm_train.bundle import (WARM_START, add_files_and_rehash, describe_warm_start, prior_training_s,
                                      verify_bundle, write_manifest)
from training.dlm_train.data import CanvasLayout, Example, build_canvas, parse_mr
from training.dlm_train.model import Denoiser, ModelConfig, diffusion_losses
from training.dlm_train.prng import Mulberry32, mulberry32_outputs, normals, sample_seeds
from training.dlm_train.schedule import respace, respace_indices, training_schedule
from training.dlm_train.tokenizer import END, PAD, SEP, build_vocab
from training.tests.bundle_checks import assert_float16_reference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, "training", "fixtures", "e2e-train-slice.csv")


class WarmStartTest(unittest.TestCase):
    def test_a_warm_start_carries_its_bundles_training_time_cumulatively(self):
        with tempfile.TemporaryDirectory() as d:
            bundle, run = os.path.join(d, "b"), os.path.join(d, "run")
            os.makedirs(bundle)
            os.makedirs(run)
            self.assertEqual(prior_training_s(run), 0.0)
            self.assertEqual(describe_warm_start(os.path.join(bundle, "w.pt")), {"from": os.path.join(bundle, "w.pt")})
            with open(os.path.join(bundle, "manifest.json"), "w") as f:
                json.dump({"id": "m", "version": "2.0.0", "training": {"wall_time_s": 100.0}}, f)
            self.assertEqual(describe_warm_start(os.path.join(bundle, "w.pt"))["wall_time_s"], 100.0)
            # a bundle that was warm-started itself counts its whole history
            with open(os.path.join(bundle, "manifest.json"), "w") as f:
                json.dump({"id": "m", "version": "2.1.0", "training": {"wall_time_s": 50.0,
                                                                      "cumulative_wall_time_s": 150.0}}, f)
            start = describe_warm_start(os.path.join(bundle, "w.pt"))
            self.assertEqual((start["bundle"], start["wall_time_s"]), ("m 2.1.0", 150.0))
            with open(os.path.join(run, WARM_START), "w") as f:
                json.dump(start, f)
            self.assertEqual(prior_training_s(run), 150.0)


class PrngTest(unittest.TestCase):
    def test_vectorized_matches_scalar(self):
        for seed in (0, 1, 42, 2**32 - 1):
            r = Mulberry32(seed)
            self.assertEqual([r.next() for _ in range(50)], [int(v) for v in mulberry32_outputs(seed, 0, 50)])
        r = Mulberry32(9)
        seq = [r.next() for _ in range(20)]
        self.assertEqual(seq[7:12], [int(v) for v in mulberry32_outputs(9, 7, 5)])

    def test_known_values(self):  # the widely published mulberry32(42) stream (JS reference)
        self.assertEqual([int(v) for v in mulberry32_outputs(42, 0, 3)], [2581720956, 1925393290, 3661312704])

    def test_normals_stream_is_offset_consistent(self):
        full = normals(5, 0, 101)
        np.testing.assert_array_equal(full[37:90], normals(5, 37, 53))
        self.assertEqual(full.dtype, np.float32)
        big = normals(3, 0, 20000)
        self.assertLess(abs(float(big.mean())), 0.05)
        self.assertLess(abs(float(big.std()) - 1.0), 0.05)

    def test_sample_seeds(self):
        r = Mulberry32(11)
        self.assertEqual([r.next() for _ in range(4)], [int(v) for v in sample_seeds(11, 4)])


class ScheduleTest(unittest.TestCase):
    def test_sqrt_schedule(self):
        ab = training_schedule()
        self.assertEqual(len(ab), 2000)
        self.assertTrue(np.all(np.diff(ab) < 0))
        self.assertAlmostEqual(ab[0], (1 - np.sqrt(1 / 2000 + 1e-4)) / (1 - np.sqrt(1e-4)), places=12)
        self.assertLess(ab[-1], 1e-3)

    def test_respacing(self):
        self.assertEqual(respace_indices(1).tolist(), [1999])
        self.assertEqual(respace_indices(2).tolist(), [0, 1999])
        u = respace_indices(200)
        self.assertEqual((u[0], u[1], u[-1]), (0, 10, 1999))
        self.assertEqual(respace_indices(3).tolist(), [0, 1000, 1999])  # 999.5 rounds half away from zero
        # spaced by a power of k / (S - 1), the engine's lists (tests/unit/engine/prng-schedule.test.ts)
        self.assertEqual(respace_indices(5, spacing=0.5).tolist(), [0, 1000, 1414, 1731, 1999])
        self.assertEqual(respace_indices(5, spacing=2.0).tolist(), [0, 125, 500, 1124, 1999])
        steep = respace_indices(2000, spacing=0.25)
        self.assertEqual(steep.tolist(), list(range(2000)))  # collisions pushed apart
        with self.assertRaises(ValueError):
            respace_indices(10, spacing=0.0)
        r = respace(200)
        self.assertEqual(r.var[0], r.var[1])
        self.assertAlmostEqual(r.c1[0], 1.0, places=12)
        self.assertAlmostEqual(r.c2[0], 0.0, places=12)
        with self.assertRaises(ValueError):
            respace_indices(0)


def tiny_model(V=40, L=12):
    torch.manual_seed(0)
    return Denoiser(ModelConfig(vocab_size=V, length=L, d=4, hidden=16, layers=1, heads=2, mlp_ratio=2,
                                dropout=0.0, time_dim=8))


class ModelTest(unittest.TestCase):
    def test_shapes_and_loss_decreases(self):
        m = tiny_model()
        ids = torch.randint(0, 40, (8, 12))
        abar = torch.tensor(training_schedule(), dtype=torch.float32)
        opt = torch.optim.AdamW(m.parameters(), 3e-3)
        g = torch.Generator().manual_seed(0)
        first = None
        for _ in range(60):
            out = diffusion_losses(m, ids, abar)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            first = first if first is not None else float(out["loss"])
        last = float(diffusion_losses(m, ids, abar, generator=g)["loss"])
        self.assertLess(last, first)
        self.assertEqual(m(torch.randn(3, 12, 4), torch.tensor([0.0, 5.0, 1999.0])).shape, (3, 12, 4))

    def test_rounding_logits_argmax_is_nearest(self):
        m = tiny_model()
        x = torch.randn(2, 12, 4)
        self.assertTrue(torch.equal(m.rounding_logits(x).argmax(-1), S.nearest(x, m.emb.weight)))


class CanvasTest(unittest.TestCase):
    def test_layout_and_drop(self):
        tok = build_vocab(['{"name":"A"}', "A is a pub."] * 3, min_count=1)
        lay = CanvasLayout(20, 8)
        c = build_canvas(tok, lay, Example("A is a pub.", {"name": "A"}))
        self.assertEqual(len(c), 20)
        self.assertEqual(c[8], SEP)
        self.assertEqual(tok.decode(c[:8]), '{"name":"A"}')
        text = c[9:]
        self.assertEqual(tok.decode(text[:text.index(END)]), "A is a pub.")
        self.assertTrue(all(t == PAD for t in text[text.index(END) + 1:]))
        self.assertIsNone(build_canvas(tok, lay, Example("A is a pub. " * 5, {"name": "A"})))


class SamplerAndBundleTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def _ref(self):
        tok = build_vocab(['{"name":"A","eatType":"pub"}', "A is a pub near B."] * 3, min_count=1)
        m = tiny_model(V=len(tok), L=24)
        return S.from_model(m, tok, CanvasLayout(24, 10))

    def test_sampler_is_deterministic_and_batch_independent(self):
        ref = self._ref()
        a = S.sample(ref, 3, steps=5, seed=7)
        b = S.sample(ref, 3, steps=5, seed=7)
        np.testing.assert_array_equal(a, b)
        c = S.sample(ref, 1, steps=5, seed=7, first_index=2)  # sample 2 alone equals sample 2 of the batch
        np.testing.assert_array_equal(a[2], c[0])
        self.assertFalse(np.array_equal(a, S.sample(ref, 3, steps=5, seed=8)))

    def test_held_positions_are_kept(self):
        ref = self._ref()
        given, held = S.held_canvas(ref, record={"name": "A", "eatType": "pub"})
        out = S.sample(ref, 2, steps=4, seed=1, given=given, held=held)
        for row in out:
            np.testing.assert_array_equal(row[held], given[held])
            self.assertEqual(S.decode(ref, row)["record"], '{"name":"A","eatType":"pub"}')
        given, held = S.held_canvas(ref, text="A is a pub.")
        out = S.sample(ref, 1, steps=4, seed=1, given=given, held=held)
        self.assertEqual(S.decode(ref, out[0])["text"], "A is a pub.")
        with self.assertRaises(ValueError):
            S.held_canvas(ref, text="A is a pub near B. " * 6)

    def test_add_files_and_rehash(self):
        write_manifest(self.dir, {"format": "dlm-bundle/1", "files": [], "classifiers": [], "scorer": None})
        with open(os.path.join(self.dir, "a.bin"), "wb") as f:
            f.write(b"abc")
        os.makedirs(os.path.join(self.dir, "classifiers"))
        with open(os.path.join(self.dir, "classifiers", "pos.b1.onnx"), "wb") as f:
            f.write(b"xyz")
        m = add_files_and_rehash(self.dir, ["a.bin", "classifiers/pos.b1.onnx"], {"scorer": {"file": "s"}})
        self.assertEqual([f["path"] for f in m["files"]], ["a.bin", "classifiers/pos.b1.onnx"])
        self.assertEqual(m["files"][0]["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        self.assertEqual(m["scorer"], {"file": "s"})
        verify_bundle(self.dir)
        with open(os.path.join(self.dir, "a.bin"), "wb") as f:
            f.write(b"abd")
        with self.assertRaisesRegex(ValueError, r"files\[0\]\.sha256 .*a\.bin"):
            verify_bundle(self.dir)
        with self.assertRaises(FileNotFoundError):
            add_files_and_rehash(self.dir, ["missing.onnx"])
        with self.assertRaises(ValueError):
            add_files_and_rehash(self.dir, ["../escape"])


@unittest.skipUnless(os.path.exists(TRAIN), "E2E data not present")
class TrainResumeTest(unittest.TestCase):
    def test_train_resume_and_config_errors(self):
        d = tempfile.mkdtemp()
        try:
            cfg = os.path.join(d, "c.json")
            with open(cfg, "w") as f:
                json.dump({"name": "t", "data": {"train": TRAIN, "limit": 300},
                           "model": {"hidden": 16, "layers": 1, "heads": 2, "mlp_ratio": 2, "time_dim": 8},
                           "train": {"batch_size": 8, "max_steps": 6, "ckpt_every": 3, "log_every": 1,
                                     "warmup": 2, "threads": 1, "lr": 1e-3}}, f)
            run = os.path.join(d, "run")
            env = {**os.environ, "PYTHONPATH": ROOT}
            cmd = [sys.executable, "-m", "training.dlm_train.train", "--config", cfg, "--run-dir", run]
            subprocess.run(cmd + ["--max-steps", "3"], check=True, cwd=ROOT, env=env, capture_output=True)
            r = subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True, text=True)
            self.assertIn("resumed from", r.stdout)
            ck = torch.load(os.path.join(run, "ckpt.pt"))
            self.assertEqual(ck["state"]["step"], 6)
            with open(os.path.join(run, "log.jsonl")) as f:
                steps = [json.loads(ln)["step"] for ln in f if '"loss"' in ln]
            self.assertEqual(steps, [1, 2, 3, 4, 5, 6])
            # a stop_at schedule resumed after a long gap counts training time only: the gap is not progress
            ck["state"]["start_wall"] -= 100 * 3600
            torch.save(ck, os.path.join(run, "ckpt.pt"))
            stop = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3600))
            subprocess.run(cmd + ["--max-steps", "7", "--stop-at", stop], check=True, cwd=ROOT, env=env, capture_output=True)
            with open(os.path.join(run, "log.jsonl")) as f:
                last = [json.loads(ln) for ln in f if '"loss"' in ln][-1]
            self.assertEqual(last["step"], 7)
            # the step schedule gives 1e-3 x (1 - 6/7) = 1.4e-4; a counted 100-hour gap would give about 1e-5
            self.assertGreater(last["lr"], 1e-4)
            with open(cfg, "w") as f:
                json.dump({"train": {"batch_sise": 8}}, f)
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("batch_sise", r.stderr)
            # the masked family's read-back options are refused by name on a continuous run
            with open(cfg, "w") as f:
                json.dump({"data": {"train": TRAIN, "limit": 50}, "train": {"p_substitute": 0.2}}, f)
            r = subprocess.run(cmd + ["--run-dir", os.path.join(d, "run2")], cwd=ROOT, env=env, capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("train.p_substitute", r.stderr)
        finally:
            shutil.rmtree(d)



class QuantizeTest(unittest.TestCase):
    def test_weight_quantization_error_is_within_half_a_step(self):
        from training.dlm_train.quantize import quantize_weight
        w = np.random.default_rng(0).normal(size=(64, 48)).astype(np.float32)
        w[:, 5] = 0.0  # an all-zero column must not divide by zero
        q, scale = quantize_weight(w)
        self.assertEqual(q.dtype, np.int8)
        self.assertLessEqual(int(np.abs(q.astype(np.int32)).max()), 127)
        err = np.abs(w - q.astype(np.float32) * scale)
        self.assertTrue(np.all(err <= scale / 2 + 1e-7))
        self.assertTrue(np.all(q[:, 5] == 0))

    def test_denoiser_graph_rewrite(self):
        import onnx
        from training.dlm_train.export import export_onnx
        from training.dlm_train.quantize import quantize_model
        d = tempfile.mkdtemp()
        try:
            path = os.path.join(d, "den.onnx")
            export_onnx(tiny_model(), path)
            before = onnx.load(path)
            n_mm = sum(n.op_type == "MatMul" for n in before.graph.node)
            m = onnx.load(path)
            counts = quantize_model(m, min_dim=8)
            onnx.checker.check_model(m)
            ops = [n.op_type for n in m.graph.node]
            self.assertEqual(counts["quantized"], ops.count("DynamicQuantizeMatMul"))
            self.assertGreater(counts["quantized"], 0)
            self.assertEqual(counts["quantized"] + counts["kept"], n_mm)
            self.assertIn("com.microsoft", [o.domain for o in m.opset_import])
            # folded biases: one Add fewer per quantized MatMul that had one; every int8 weight is really int8
            inits = {i.name: i for i in m.graph.initializer}
            for n in m.graph.node:
                if n.op_type == "DynamicQuantizeMatMul":
                    self.assertEqual(inits[n.input[1]].data_type, onnx.TensorProto.INT8)
            self.assertLess(ops.count("Add"), [x.op_type for x in before.graph.node].count("Add"))
            # nothing large enough: nothing changes
            m2 = onnx.load(path)
            self.assertEqual(quantize_model(m2, min_dim=10_000)["quantized"], 0)
        finally:
            shutil.rmtree(d)

    @unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(ROOT, "node_modules", "onnxruntime-node")),
                         "needs node and onnxruntime-node")
    def test_recipe_b_bundle_exports_and_quantizes_with_its_extra_inputs(self):
        # a recipe-B denoiser (self-conditioning input, clean flags): the onnxruntime-node check feeds all four
        # inputs, and the static calibration records them along the reference sampler's trajectories
        from training.dlm_train import export as X
        from training.dlm_train.quantize import add_int8_denoiser, calibration_inputs
        from training.guidance.ort import run_onnx
        d = tempfile.mkdtemp()
        try:
            cfg = os.path.join(d, "c.json")
            with open(cfg, "w") as f:
                json.dump({"name": "b", "data": {"train": TRAIN, "limit": 200},
                           "model": {"hidden": 64, "layers": 1, "heads": 2, "mlp_ratio": 2, "time_dim": 8,
                                     "objective": "ce", "self_condition": True, "clean_flags": True},
                           "train": {"batch_size": 8, "max_steps": 2, "ckpt_every": 2, "log_every": 1,
                                     "warmup": 1, "threads": 1, "p_tail_clean": 0.3}}, f)
            run, out = os.path.join(d, "run"), os.path.join(d, "bundle")
            env = {**os.environ, "PYTHONPATH": ROOT}
            subprocess.run([sys.executable, "-m", "training.dlm_train.train", "--config", cfg, "--run-dir", run],
                           check=True, cwd=ROOT, env=env, capture_output=True)
            X.main(["--run", run, "--out", out, "--dev", "", "--card-samples", "1", "--card-steps", "3",
                    "--verify-node", "--text-length-quantile", "0.6", "--x0-temperature", "0.5"])
            with open(os.path.join(out, "manifest.json")) as f:
                m = json.load(f)
            self.assertEqual(set(m["denoiser"]["inputs"]), {"x_t", "t", "x_self_cond", "clean"})
            # trained with the tail given clean: it holds a length, and data-to-text holds the corpus fit's
            self.assertTrue(m["denoiser"]["held_length"])
            self.assertEqual((m["text_length"]["examples"], m["text_length"]["quantile"]), (200, 0.6))
            with open(os.path.join(out, "DATA_CARD.md")) as f:
                self.assertIn("manifest `text_length`", f.read())
            # the sharper x0 is in the graph (checked against torch by --verify-node) and in the reference's config
            self.assertEqual(m["denoiser"]["x0_temperature"], 0.5)
            ref = S.load_bundle(out)
            self.assertEqual(ref.model.cfg.x0_temperature, 0.5)
            ids, held = S.held_canvas(ref, {"name": "The Vaults", "eatType": "pub"})
            self.assertEqual(int((ids[ref.layout.text_start:] == END).sum()), 1)
            assert_float16_reference(self, out)
            feeds = calibration_inputs(out, samples=2, steps=4, rows=16)
            self.assertEqual(set(feeds), {"x_t", "t", "x_self_cond", "clean"})
            self.assertEqual(feeds["clean"].shape, feeds["x_t"].shape[:2])
            self.assertGreater(float(np.abs(feeds["x_self_cond"]).max()), 0.0)  # later steps carry x0 estimates
            m = add_int8_denoiser(out, min_dim=16)
            self.assertGreater(m["denoiser"]["int8"]["matmuls_quantized"], 0)
            fp32 = run_onnx(os.path.join(out, "denoiser.onnx"), feeds)["x0"]
            int8 = run_onnx(os.path.join(out, "denoiser.int8.onnx"), feeds)["x0"]
            self.assertLess(float(np.abs(fp32 - int8).max()), 0.1 * float(np.abs(fp32).max()))
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
