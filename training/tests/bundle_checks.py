"""Checks shared by the export tests."""
from __future__ import annotations

import os

import numpy as np
import torch


def assert_float16_reference(test, bundle_dir: str) -> None:
    """denoiser.pt holds float16 tensors, and the ONNX graph's weight matrices hold the same float16-exact values
    (reference_weights.py), so the reference sampler and the engine run the same weights."""
    import onnx
    from onnx import numpy_helper
    sd = torch.load(os.path.join(bundle_dir, "denoiser.pt"), map_location="cpu", weights_only=True)
    floats = [v for v in sd.values() if v.is_floating_point()]
    test.assertTrue(floats)
    test.assertTrue(all(v.dtype == torch.float16 for v in floats))
    checked = 0
    for init in onnx.load(os.path.join(bundle_dir, "denoiser.onnx")).graph.initializer:
        if init.name not in sd:  # values the exporter folded from the weights (computed the same way at run time)
            continue
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32:
            np.testing.assert_array_equal(a, sd[init.name].float().numpy(), err_msg=init.name)
            checked += 1
    test.assertGreater(checked, 0)
