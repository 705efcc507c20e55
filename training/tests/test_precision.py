"""train.precision 'auto': bf16 autocast only where it measured faster than fp32 (train.pick_autocast)."""
import unittest
from unittest import mock

import torch

from training.dlm_train import train
from training.dlm_train.model import Denoiser, ModelConfig

CPU = torch.device("cpu")


class PickAutocastTest(unittest.TestCase):
    def test_auto_takes_the_faster_measure_on_a_bf16_cpu(self):
        calls = []

        def measure(times):
            def run():
                calls.append(1)
                return times
            return run

        with mock.patch.object(train, "cpu_has_bf16", return_value=True):
            self.assertIsNone(train.pick_autocast("auto", CPU, measure({"fp32": 1.2, "bf16": 1.9})))
            self.assertIs(train.pick_autocast("auto", CPU, measure({"fp32": 1.2, "bf16": 0.4})), torch.bfloat16)
            self.assertIs(train.pick_autocast("auto", CPU), torch.bfloat16)  # nothing to measure with
            # an explicit setting is never second-guessed
            self.assertIsNone(train.pick_autocast("fp32", CPU, measure({"fp32": 9.0, "bf16": 0.1})))
            self.assertIs(train.pick_autocast("bf16", CPU, measure({"fp32": 0.1, "bf16": 9.0})), torch.bfloat16)
        self.assertEqual(len(calls), 2)
        with mock.patch.object(train, "cpu_has_bf16", return_value=False):
            self.assertIsNone(train.pick_autocast("auto", CPU, measure({"fp32": 9.0, "bf16": 0.1})))
        self.assertEqual(len(calls), 2, "a CPU without bf16 support is not measured")
        with self.assertRaisesRegex(ValueError, "train.precision: unknown value 'fp16'"):
            train.pick_autocast("fp16", CPU)

    def test_the_measurement_leaves_no_gradients_and_the_rng_where_it_was(self):
        torch.manual_seed(0)
        cfg = ModelConfig(vocab_size=30, length=12, d=4, hidden=16, layers=1, heads=2, mlp_ratio=2, dropout=0.0,
                          time_dim=8, objective="ce", self_condition=True, clean_flags=True)
        model = Denoiser(cfg)
        abar = torch.tensor(train.training_schedule(100, 1e-4), dtype=torch.float32)
        loss = train.LossModule(model, abar, text_start=4, p_tail_clean=0.3)
        ids = torch.randint(0, 30, (4, 12))
        before = torch.get_rng_state()
        times = train.time_precisions(loss, list(model.parameters()), ids, CPU, repeats=1)
        self.assertEqual(sorted(times), ["bf16", "fp32"])
        self.assertTrue(all(t > 0 for t in times.values()))
        self.assertTrue(torch.equal(torch.get_rng_state(), before))
        self.assertTrue(all(p.grad is None for p in model.parameters()))


if __name__ == "__main__":
    unittest.main()
