"""The masked family (loss, reference sampler, export) and recipe B of the continuous family."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

from training.dlm_train import masked_sample as M
from training.dlm_train import sample as S
from training.dlm_train.data import CanvasLayout
from training.dlm_train.masked import MaskedConfig, MaskedDenoiser, masked_losses
from training.dlm_train.model import Denoiser, ModelConfig, ce_losses
from training.dlm_train.schedule import training_schedule
from training.dlm_train.tokenizer import END, PAD, Tokenizer, build_vocab
from training.tests.bundle_checks import assert_float16_reference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(ROOT, "training", "fixtures", "e2e-train-slice.csv")


def tiny_masked(V=30, L=12):
    torch.manual_seed(0)
    return MaskedDenoiser(MaskedConfig(vocab_size=V, length=L, hidden=16, layers=1, heads=2, mlp_ratio=2))


def tiny_tok(V=30):
    return Tokenizer(["<pad>", "<sep>", "<end>", "<unk>"] + [f"w{i}" for i in range(V - 4)])


def record_inputs(m: MaskedDenoiser) -> list:
    """The canvases m is called on from now on, in call order."""
    seen = []
    real_forward = m.forward
    m.forward = lambda x: (seen.append(x.clone()), real_forward(x))[1]
    return seen


class MaskedLossTest(unittest.TestCase):
    def test_only_generated_segments_are_masked(self):
        m = tiny_masked()
        ids = torch.randint(0, 30, (64, 12))
        seen = record_inputs(m)
        out = masked_losses(m, ids, text_start=5, generator=torch.Generator().manual_seed(1))
        x = seen[0]
        masked = x == m.cfg.mask_id
        rec_masked = masked[:, :5].any(1)
        text_masked = masked[:, 5:].any(1)
        # some rows mask only the text, some only the record, none is masked where it is given
        self.assertTrue(bool((text_masked & ~rec_masked).any()))
        self.assertTrue(bool((rec_masked & ~text_masked).any()))
        self.assertTrue(torch.equal(x[~masked], ids[~masked]))
        self.assertGreater(float(out["loss"]), 0.0)

    def test_substitution_replaces_visible_tokens_and_trains_them(self):
        m = tiny_masked()
        ids = torch.randint(0, 30, (64, 12))
        seen = record_inputs(m)
        plain = masked_losses(m, ids, 5, generator=torch.Generator().manual_seed(1))
        # the record given in every row (data-to-text): only the text is generated, so only it may change
        out = masked_losses(m, ids, 5, generator=torch.Generator().manual_seed(1), p_text_only=1.0, p_record_only=0.0,
                            p_substitute=0.3, visible_weight=1.0)
        x = seen[1]
        changed = (x != ids) & (x != m.cfg.mask_id)
        self.assertFalse(bool(changed[:, :5].any()), "a given record was changed")
        self.assertTrue(bool((x[changed] < 30).all()))
        visible_text = (x[:, 5:] != m.cfg.mask_id).sum()
        share = float(changed[:, 5:].sum()) / float(visible_text)
        self.assertGreater(share, 0.15)
        self.assertLess(share, 0.4)
        self.assertIn("visible_ce", out)
        self.assertGreater(float(out["loss"]), float(plain["loss"]) * 0.5)
        # without them the loss is the plain one (no visible term)
        self.assertNotIn("visible_ce", plain)

    def test_training_lowers_the_loss(self):
        m = tiny_masked()
        ids = torch.randint(0, 30, (2, 12)).repeat(8, 1)  # two canvases to memorise
        opt = torch.optim.AdamW(m.parameters(), 1e-2)
        g = torch.Generator().manual_seed(0)

        def held_out_loss():
            return np.mean([float(masked_losses(m, ids, 5, generator=torch.Generator().manual_seed(k))["loss"])
                            for k in range(8)])
        first = held_out_loss()
        for _ in range(100):
            out = masked_losses(m, ids, 5, generator=g)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
        self.assertLess(held_out_loss(), 0.5 * first)


class MaskedSamplerTest(unittest.TestCase):
    def setUp(self):
        self.ref = M.MaskedReference(tiny_masked(), tiny_tok(), CanvasLayout(12, 4), mask_id=30)

    def test_step_plan(self):
        s = M.MaskedSettings(steps=5, block_length=4)
        self.assertEqual(M.step_plan(10, s), [[2, 2], [2, 2], [2]])  # blocks of 4, 4, 2 positions; 2, 2, 1 steps
        self.assertEqual(M.step_plan(3, M.MaskedSettings(steps=5)), [[1, 1, 1, 0, 0]])
        self.assertEqual(sum(map(sum, M.step_plan(37, M.MaskedSettings(steps=7, block_length=8)))), 37)

    def test_held_positions_kept_and_all_filled(self):
        given = np.arange(12) % 30
        held = np.zeros(12, dtype=bool)
        held[:5] = True
        ids = M.sample(self.ref, 3, M.MaskedSettings(steps=4, block_length=3), seed=2, given=given, held=held)
        self.assertTrue(np.array_equal(ids[:, :5], np.broadcast_to(given[:5], (3, 5))))
        self.assertFalse((ids == 30).any())
        self.assertTrue((ids < 30).all())

    def test_seeded_and_reproducible(self):
        s = M.MaskedSettings(steps=6, temperature=1.0, top_p=0.9)
        a = M.sample(self.ref, 4, s, seed=5)
        b = M.sample(self.ref, 4, s, seed=5)
        c = M.sample(self.ref, 4, s, seed=6)
        np.testing.assert_array_equal(a, b)
        self.assertFalse(np.array_equal(a, c))
        # sample j does not depend on which batch it ran in
        np.testing.assert_array_equal(M.sample(self.ref, 2, s, seed=5, first_index=2), a[2:])

    def test_greedy_commits_the_argmax_and_caches(self):
        s = M.MaskedSettings(steps=24, block_length=0)  # more steps than positions: some steps commit nothing
        self.ref.calls.clear()
        ids = M.sample(self.ref, 1, s, seed=0)
        self.assertLess(len(self.ref.calls), 24)
        self.assertEqual(len(self.ref.calls), 13)  # 12 steps commit one position each; one more call sees the last
        self.assertEqual(ids.shape, (1, 12))

    def test_confidences_and_bad_settings(self):
        for c in M.CONFIDENCES:
            M.sample(self.ref, 1, M.MaskedSettings(steps=3, confidence=c), seed=1)
        with self.assertRaisesRegex(ValueError, "sampler.confidence"):
            M.sample(self.ref, 1, M.MaskedSettings(confidence="nope"), seed=1)
        with self.assertRaisesRegex(ValueError, "sampler.top_p"):
            M.sample(self.ref, 1, M.MaskedSettings(top_p=0.0), seed=1)

    def test_shifted_logits_use_the_previous_position(self):
        class Fixed(torch.nn.Module):  # output position i strongly predicts token 4 + i
            def forward(self, ids):
                out = torch.full((ids.shape[0], 12, 30), -10.0)
                for i in range(12):
                    out[:, i, 4 + i] = 10.0
                return out
        plain = M.MaskedReference(Fixed(), tiny_tok(), CanvasLayout(12, 0), mask_id=5)
        shifted = M.MaskedReference(Fixed(), tiny_tok(), CanvasLayout(12, 0), mask_id=5, shifted=True)
        a = M.sample(plain, 1, M.MaskedSettings(steps=12), seed=0)[0]
        b = M.sample(shifted, 1, M.MaskedSettings(steps=12), seed=0)[0]
        self.assertEqual(a[0], 4)
        self.assertNotIn(5, a.tolist())  # the mask id (inside this vocab) is never committed
        self.assertEqual(b[3], 6)  # position 3 reads output 2
        self.assertEqual(b[0], 4)  # position 0 reads output 0


class DefaultsTest(unittest.TestCase):
    def test_unconditional_temperature_applies_only_when_nothing_is_pinned(self):
        d = {"steps": 9, "block_length": 4, "temperature": 0.0, "temperature_unconditional": 0.5}
        self.assertEqual(M.settings_from_defaults(d, pinned=False).temperature, 0.5)
        self.assertEqual(M.settings_from_defaults(d, pinned=True).temperature, 0.0)
        self.assertEqual(M.settings_from_defaults({"temperature": 0.2}, pinned=False).temperature, 0.2)
        self.assertEqual(M.settings_from_defaults(d, pinned=True).steps, 9)

    def test_record_temperature_applies_only_when_nothing_is_pinned(self):
        d = {"temperature": 0.3, "temperature_unconditional": 0.5, "record_temperature_unconditional": 1.0}
        self.assertEqual(M.settings_from_defaults(d, pinned=False).record_temperature, 1.0)
        self.assertIsNone(M.settings_from_defaults(d, pinned=True).record_temperature)
        self.assertIsNone(M.settings_from_defaults({"temperature": 0.2}, pinned=False).record_temperature)
        with self.assertRaisesRegex(ValueError, "record_temperature"):
            M.MaskedSettings(record_temperature=-1).check()


class RecipeBTest(unittest.TestCase):
    def test_ce_loss_skips_clean_positions_and_x0_is_in_the_embedding_hull(self):
        torch.manual_seed(0)
        m = Denoiser(ModelConfig(vocab_size=30, length=12, d=4, hidden=16, layers=1, heads=2, mlp_ratio=2,
                                 dropout=0.0, time_dim=8, objective="ce", self_condition=True, clean_flags=True))
        e = m.embeddings()
        np.testing.assert_allclose(e.norm(dim=-1).detach().numpy(), 2.0, rtol=1e-5)  # sqrt(d)
        abar = torch.tensor(training_schedule(), dtype=torch.float32)
        ids = torch.randint(0, 30, (16, 12))
        opt = torch.optim.AdamW(m.parameters(), 3e-3)
        first = float(ce_losses(m, ids, abar, 5, generator=torch.Generator().manual_seed(0))["loss"])
        for _ in range(60):
            out = ce_losses(m, ids, abar, 5)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
        self.assertLess(float(ce_losses(m, ids, abar, 5, generator=torch.Generator().manual_seed(0))["loss"]), first)
        x0 = m(torch.randn(2, 12, 4), torch.tensor([3.0, 1500.0]), torch.zeros(2, 12, 4), torch.zeros(2, 12))
        self.assertEqual(x0.shape, (2, 12, 4))
        self.assertLessEqual(float(x0.norm(dim=-1).max()), 2.0 + 1e-4)  # a convex mix of norm-2 rows

    def test_tail_clean_gives_end_and_padding_clean_from_the_first_text_end(self):
        m = Denoiser(ModelConfig(vocab_size=30, length=12, d=4, hidden=16, layers=1, heads=2, mlp_ratio=2,
                                 dropout=0.0, time_dim=8, objective="ce", self_condition=False, clean_flags=True))
        seen = []
        real = m.trunk_output
        m.trunk_output = lambda x, t, sc=None, clean=None: seen.append(clean.clone()) or real(x, t, sc, clean)
        abar = torch.tensor(training_schedule(), dtype=torch.float32)
        # record [0, 5) with an <end>-valued id inside it (not the text's), text [5, 12) ending at position 9
        ids = torch.tensor([[7, END, 8, 9, 1, 10, 11, 12, 13, END, PAD, PAD]] * 64)
        ce_losses(m, ids, abar, 5, p_record_clean=0.0, p_text_clean=0.0, p_tail_clean=1.0,
                  generator=torch.Generator().manual_seed(0))
        expected = torch.tensor([0] * 9 + [1] * 3, dtype=torch.float32)
        self.assertTrue(bool((seen[-1] == expected).all()))
        seen.clear()
        ce_losses(m, ids, abar, 5, p_record_clean=0.0, p_text_clean=0.0, p_tail_clean=0.0,
                  generator=torch.Generator().manual_seed(0))
        self.assertEqual(float(seen[-1].sum()), 0.0)

    def test_reference_sampler_feeds_self_condition_and_clean_flags(self):
        torch.manual_seed(0)
        m = Denoiser(ModelConfig(vocab_size=30, length=12, d=4, hidden=16, layers=1, heads=2, mlp_ratio=2,
                                 dropout=0.0, time_dim=8, objective="ce", self_condition=True, clean_flags=True))
        calls = []
        real = m.forward
        def spy(x, t, sc=None, clean=None):
            out = real(x, t, sc, clean)
            calls.append((x.clone(), sc, clean, out))
            return out
        m.forward = spy
        ref = S.from_model(m, tiny_tok(), CanvasLayout(12, 4))
        given = np.arange(12) % 30
        held = np.zeros(12, dtype=bool)
        held[:5] = True
        out = S.sample(ref, 2, steps=5, seed=0, given=given, held=held)
        self.assertTrue((out[:, :5] == given[:5]).all())
        self.assertTrue(float(calls[0][1].abs().max()) == 0.0)  # zeros at the first step
        for k in range(1, len(calls)):  # each step's self-conditioning input is the previous raw x0 estimate
            self.assertTrue(torch.equal(calls[k][1], calls[k - 1][3]))
        self.assertEqual(calls[0][2][:, :5].min().item(), 1.0)
        self.assertEqual(calls[0][2][:, 5:].max().item(), 0.0)
        # held positions enter as their clean embeddings at every step
        e = ref.emb[torch.from_numpy(given[:5])]
        for x, _, _, _ in calls:
            torch.testing.assert_close(x[0, :5], e)


class ContinuousSamplersTest(unittest.TestCase):
    """The reference sampler's ddim and dpm2m (same coefficients as src-main/engine/families/continuous/steps.ts)."""

    def test_coefficients(self):
        from training.dlm_train.schedule import respace
        sch = respace(20)
        for k in range(1, 20):
            cx0, cx, sd = S.ddim_coefficients(sch, k, 1.0)  # eta 1: the ancestral step
            self.assertAlmostEqual(cx0, sch.c1[k], places=12)
            self.assertAlmostEqual(cx, sch.c2[k], places=12)
            self.assertAlmostEqual(sd * sd, sch.beta[k] * (1 - sch.abar_prev[k]) / (1 - sch.abar[k]), places=12)
            d0 = S.ddim_coefficients(sch, k, 0.0)
            first = S.dpm2m_coefficients(sch, k, False)
            self.assertEqual(d0[2], 0.0)
            self.assertAlmostEqual(first[0], d0[1], places=12)  # first order = DDIM with eta 0
            self.assertAlmostEqual(first[1], d0[0], places=12)
            if k < 19:
                second = S.dpm2m_coefficients(sch, k, True)
                self.assertAlmostEqual(second[1] + second[2], first[1], places=12)
        self.assertEqual(S.ddim_coefficients(sch, 0, 0.5), (1.0, 0.0, 0.0))
        self.assertEqual(S.dpm2m_coefficients(sch, 0, True), (0.0, 1.0, 0.0))

    def test_samplers_with_self_condition_clean_flags_and_held_positions(self):
        torch.manual_seed(0)
        m = Denoiser(ModelConfig(vocab_size=30, length=12, d=4, hidden=16, layers=1, heads=2, mlp_ratio=2,
                                 dropout=0.0, time_dim=8, objective="ce", self_condition=True, clean_flags=True))
        ref = S.from_model(m, tiny_tok(), CanvasLayout(12, 4))
        given = np.arange(12) % 30
        held = np.zeros(12, dtype=bool)
        held[:5] = True
        for sampler, eta in (("ddim", 0.0), ("ddim", 0.5), ("dpm2m", 0.0)):
            a = S.sample(ref, 3, steps=6, seed=4, given=given, held=held, sampler=sampler, eta=eta)
            self.assertTrue((a[:, :5] == given[:5]).all(), sampler)
            np.testing.assert_array_equal(a, S.sample(ref, 3, steps=6, seed=4, given=given, held=held,
                                                      sampler=sampler, eta=eta))
            # a sample does not depend on its batch
            np.testing.assert_array_equal(a[1:], S.sample(ref, 2, steps=6, seed=4, given=given, held=held,
                                                           first_index=1, sampler=sampler, eta=eta))
        with self.assertRaises(ValueError):
            S.sample(ref, 1, steps=2, sampler="euler")
        with self.assertRaises(ValueError):
            S.sample(ref, 1, steps=2, sampler="ddim", eta=1.5)

    def test_ddim_eta_one_is_ancestral(self):
        torch.manual_seed(1)
        m = Denoiser(ModelConfig(vocab_size=30, length=12, d=4, hidden=16, layers=1, heads=2, mlp_ratio=2,
                                 dropout=0.0, time_dim=8))
        ref = S.from_model(m, tiny_tok(), CanvasLayout(12, 4))
        anc = S.sample(ref, 4, steps=8, seed=3)
        np.testing.assert_array_equal(anc, S.sample(ref, 4, steps=8, seed=3, sampler="ddim", eta=1.0))


class MaskedPipelineTest(unittest.TestCase):
    """Train a few steps on the fixture slice, export, and sample the bundle (CPU, seconds)."""

    def check_int8(self, bundle: str) -> None:
        """The int8 denoiser of a masked bundle: calibrated on its own sampler's ids, listed in the manifest, and its
        logits those of the fp32 graph within int8 error."""
        if not (shutil.which("node") and os.path.isdir(os.path.join(ROOT, "node_modules", "onnxruntime-node"))):
            return
        from training.dlm_train.bundle import verify_bundle
        from training.dlm_train.quantize import add_int8_denoiser, masked_calibration_inputs
        from training.guidance.ort import run_onnx
        feeds = masked_calibration_inputs(bundle, samples=2, rows=16)
        man = json.load(open(os.path.join(bundle, "manifest.json")))
        self.assertEqual(feeds["ids"].shape[1], man["canvas"]["length"])
        self.assertTrue((feeds["ids"] == man["mask"]["id"]).any() and (feeds["ids"] != man["mask"]["id"]).any())
        with self.assertRaisesRegex(ValueError, "guided_runs must be"):
            add_int8_denoiser(bundle, min_dim=16, guided_runs="bf16")
        m = add_int8_denoiser(bundle, min_dim=16, guided_runs="fp32")
        self.assertEqual(m["denoiser"]["int8"]["activations"], "static")
        self.assertEqual(m["denoiser"]["int8"]["guided_runs"], "fp32")
        self.assertIn("classifier-guided runs stay on the fp32 graph", open(os.path.join(bundle, "DATA_CARD.md")).read())
        self.assertGreater(m["denoiser"]["int8"]["matmuls_quantized"], 0)
        verify_bundle(bundle)
        ids = feeds["ids"][:4]
        fp32 = run_onnx(os.path.join(bundle, "denoiser.onnx"), {"ids": ids})["logits"]
        int8 = run_onnx(os.path.join(bundle, m["denoiser"]["int8"]["file"]), {"ids": ids})["logits"]
        self.assertEqual(fp32.shape, int8.shape)
        spread = float(fp32.max() - fp32.min())
        self.assertLess(float(np.abs(fp32 - int8).max()), 0.1 * spread)
        self.assertGreater(float((fp32.argmax(-1) == int8.argmax(-1)).mean()), 0.9)

    def test_train_export_sample(self):
        tmp = tempfile.mkdtemp()
        try:
            cfg = {"name": "m", "family": "masked",
                   "data": {"train": TRAIN, "canvas_length": 64, "record_len": 30, "min_count": 1},
                   "model": {"hidden": 32, "layers": 1, "heads": 2, "mlp_ratio": 2},
                   "train": {"batch_size": 8, "max_steps": 6, "warmup": 2, "ckpt_every": 3, "log_every": 2,
                             "threads": 1, "precision": "fp32", "snapshot_minutes": [0]}}
            cp = os.path.join(tmp, "c.json")
            with open(cp, "w") as f:
                json.dump(cfg, f)
            run = os.path.join(tmp, "run")
            env = dict(os.environ, PYTHONPATH=ROOT)
            subprocess.run([sys.executable, "-m", "training.dlm_train.train", "--config", cp, "--run-dir", run],
                           check=True, cwd=ROOT, env=env, capture_output=True)
            self.assertTrue(os.path.exists(os.path.join(run, "snapshots", "ema-0000min.pt")))

            def export(out: str, card_samples: int, *extra: str, ok: bool = True) -> subprocess.CompletedProcess:
                r = subprocess.run([sys.executable, "-m", "training.dlm_train.masked_export", "--run", run, "--out", out,
                                    "--steps", "8", "--card-samples", str(card_samples), "--dev", "", *extra],
                                   cwd=ROOT, env=env, capture_output=True, text=True)
                if ok:
                    self.assertEqual(r.returncode, 0, r.stderr[-2000:])
                return r

            out = os.path.join(tmp, "bundle")
            export(out, 2)
            man = json.load(open(os.path.join(out, "manifest.json")))
            self.assertEqual(man["kind"], "masked-diffusion")
            self.assertEqual(man["mask"], {"id": man["tokenizer"]["size"], "shifted_logits": False})
            self.assertEqual(man["sampler_defaults"]["temperature_unconditional"], 0.5)
            self.assertEqual(man["sampler_defaults"]["record_temperature_unconditional"], 1.0)
            self.assertEqual(man["sampler_defaults"].get("record_schema_hold", False), bool(man["record_schema"]["fields"]))
            import onnx
            g = onnx.load(os.path.join(out, "denoiser.onnx")).graph
            self.assertEqual([i.name for i in g.input], ["ids"])
            self.assertEqual([o.name for o in g.output], ["logits"])
            assert_float16_reference(self, out)
            ref = M.load_masked_bundle(out)
            ids = M.sample(ref, 2, M.MaskedSettings(steps=8), seed=0)
            self.assertEqual(ids.shape, (2, 64))
            self.check_int8(out)
            # a card without samples (only the metrics wanted) exports too
            bare = os.path.join(tmp, "bare")
            export(bare, 0)
            samples = json.load(open(os.path.join(bare, "samples.json")))
            self.assertEqual((samples["unconditional"], samples["data_to_text"]), ([], []))

            # --keep-from: a bundle's measured parts (classifiers, guidance and sampler defaults, their files and
            # card sections) carry over to new weights over the same vocabulary
            measured = os.path.join(tmp, "measured")
            shutil.copytree(bare, measured)
            os.makedirs(os.path.join(measured, "classifiers"))
            with open(os.path.join(measured, "classifiers", "pos.b1.onnx"), "wb") as f:
                f.write(b"not read by the export")
            with open(os.path.join(measured, "DATA_CARD.md"), "a", encoding="utf-8") as f:
                f.write("\n## Training curve (dev BLEU of the EMA snapshots)\n\nthe measured bundle's own run\n"
                        "\n## Guidance defaults (measured on dev)\n\nattribute weight 60\n")
            from training.dlm_train.bundle import add_files_and_rehash, verify_bundle
            add_files_and_rehash(measured, ["classifiers/pos.b1.onnx"], {
                "version": "9.9.9", "classifiers": [{"control": "pos", "files": {"1": "classifiers/pos.b1.onnx"}}],
                "guidance_defaults": {"weights": {"attribute": 60}, "weight": 20},
                "sampler_defaults": {**man["sampler_defaults"], "pinned_candidates": 4}})
            kept = os.path.join(tmp, "kept")
            export(kept, 0, "--keep-from", measured)
            km = verify_bundle(kept)
            self.assertEqual(km["guidance_defaults"]["weights"], {"attribute": 60})
            self.assertEqual(km["sampler_defaults"]["pinned_candidates"], 4)
            self.assertEqual(km["classifiers"][0]["files"]["1"], "classifiers/pos.b1.onnx")
            self.assertIn("classifiers/pos.b1.onnx", [f["path"] for f in km["files"]])
            card = open(os.path.join(kept, "DATA_CARD.md"), encoding="utf-8").read()
            self.assertIn("## Guidance defaults (measured on dev)\n\nCarried over from `m` 9.9.9", card)
            self.assertNotIn("the measured bundle's own run", card)
            self.assertEqual(card.count("## Metrics"), 1)
            # another vocabulary: refused, naming the file
            voc = json.load(open(os.path.join(measured, "vocab.json")))
            voc["tokens"] = voc["tokens"][:-1]
            json.dump(voc, open(os.path.join(measured, "vocab.json"), "w"))
            r = export(os.path.join(tmp, "other"), 0, "--keep-from", measured, ok=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("vocab.json differs from the run's", r.stderr)
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    unittest.main()
