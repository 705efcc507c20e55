"""The PyTorch reference weights a bundle carries (denoiser.pt), stored in float16.

A bundle holds the same denoiser twice: the ONNX graph the engine runs and the state dict the PyTorch reference sampler
loads. Storing the state dict in float16 halves the second copy. So that the two still agree token for token, the
weights are rounded to float16 before anything is exported: the ONNX graph, the embedding table and the state dict then
hold the same values (the reference loads them back into float32 parameters, which represent them exactly).
"""
from __future__ import annotations

import torch


@torch.no_grad()
def round_weights_to_float16(model: torch.nn.Module) -> None:
    """Round every floating-point parameter and buffer to the nearest float16 value, in place (kept in float32)."""
    for v in model.state_dict().values():
        if v.is_floating_point():
            v.copy_(v.half().float())


def save_reference_weights(model: torch.nn.Module, path: str) -> None:
    """Write the state dict with floating-point tensors in float16 (call round_weights_to_float16 first)."""
    torch.save({k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}, path)
