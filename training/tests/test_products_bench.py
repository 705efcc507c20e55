import os
import shutil
import tempfile
import unittest

import numpy as np

from training.dlm_train import products_bench as P

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAS_ORT_NODE = shutil.which("node") and os.path.isdir(os.path.join(ROOT, "node_modules", "onnxruntime-node"))


class ProductsBenchTest(unittest.TestCase):
    def test_the_shipped_int8_denoiser_lists_its_products(self):
        products = P.quantized_products(os.path.join(ROOT, "models", "e2e-default", "denoiser.int8.onnx"))
        # 6 blocks x (qkv, attention out, two MLP layers), the input projection and the output to the vocabulary
        self.assertEqual(sum(products.values()), 26)
        self.assertEqual(products[(256, 768)], 6)
        self.assertEqual(products[(1024, 256)], 6)

    def test_per_step_sums_each_product_times_its_count_at_the_faster_thread_count(self):
        products = {(4, 8): 3, (8, 4): 1}
        rows = []
        for th, ms in ((1, (1.0, 2.0)), (2, (0.8, 3.0))):
            for (k, n), t in zip(products, ms):
                rows.append({"batch": 2, "k": k, "n": n, "runtime": "torch", "precision": "fp32", "threads": th, "ms": t})
        (best,) = P.per_step(rows, products, [2], canvas=10**6)
        self.assertEqual(best["threads"], 1)  # 3 x 1.0 + 2.0 = 5.0 < 3 x 0.8 + 3.0 = 5.4
        self.assertAlmostEqual(best["ms"], 5.0)
        self.assertAlmostEqual(best["gops"], 2 * 2e6 * (3 * 4 * 8 + 8 * 4) / 5.0 / 1e6)  # 102.4

    @unittest.skipUnless(HAS_ORT_NODE, "needs node and onnxruntime-node")
    def test_the_timed_graphs_compute_the_product(self):
        from training.guidance.ort import run_onnx
        d = tempfile.mkdtemp()
        try:
            paths = P.write_graphs(32, 16, 5, d, np.random.default_rng(1))
            x = np.sin(np.arange(5 * 32, dtype=np.float32) * 0.37).reshape(5, 32)
            fp32 = run_onnx(paths["fp32"], {"A": x})["Y0"]
            int8 = run_onnx(paths["int8"], {"A": x})["Y0"]
            self.assertEqual(fp32.shape, (1, 16))
            # same weights, int8 within quantization error of fp32 (and not all zeros)
            self.assertGreater(float(np.abs(fp32).max()), 0.1)
            self.assertLess(float(np.abs(fp32 - int8).max()), 0.05 * float(np.abs(fp32).max()) + 0.02)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
