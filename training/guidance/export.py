"""Export a guidance classifier's input-gradient to ONNX (torch 1.13, no autograd in onnxruntime).

Recipe (docs: ../shared/reference/platform.md): trace grad(log p(target | x_t)) with functorch's make_fx, decomposing
the backward ops; rewrite the internal ops the exporter rejects to public ones; export with shapes baked in (one graph
per batch size). Graph: inputs x_t [B,N,d], t [B], target (+ mask); outputs logp [B], grad [B,N,d].
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.fx
from functorch import grad as fgrad
from functorch import make_fx
from torch._decomp import get_decompositions

from .model import GuidanceClassifier, logp_from_logits

aten = torch.ops.aten

DECOMPOSE = [
    aten._softmax_backward_data, aten._log_softmax_backward_data, aten.native_layer_norm_backward,
    aten.native_layer_norm, aten.gelu_backward, aten.gelu, aten.tanh_backward, aten.silu_backward, aten.silu,
    aten.embedding_dense_backward, aten.t, aten.transpose.int, aten.addmm, aten.mm, aten.detach, aten.expand_as,
]

MASKED = ("pos", "spans", "attribute")


def target_shape(model: GuidanceClassifier, control: str, B: int) -> Tuple[List[int], List[int]]:
    """(target shape, mask shape or []) for a batch size."""
    c = model.cfg
    if control == "pos":
        return [B, c.text_len, c.n_pos], [B, c.text_len]
    if control == "spans":
        return [B, c.text_len, c.n_spans], [B, c.text_len]
    if control == "attribute":
        return [B, len(c.fields), c.kmax], [B, len(c.fields)]
    if control == "length":
        return [B, c.text_len], []
    if control == "sentiment":
        return [B, 3], []
    raise ValueError(f"unknown control {control!r}")


def grad_fn(model: GuidanceClassifier, control: str):
    c = model.cfg
    a, b = c.text_start, c.text_start + c.text_len

    def lp_text(x_text, t, target, mask):
        lp = logp_from_logits(control, model.logits(control, x_text, t), target, mask)
        return lp.sum(), lp

    g = fgrad(lp_text, argnums=0, has_aux=True)

    def fn_masked(x_t, t, target, mask):
        return full(x_t, t, target, mask)

    def fn(x_t, t, target):
        return full(x_t, t, target, None)

    def full(x_t, t, target, mask):
        gt, lp = g(x_t[:, a:b], t, target, mask)
        return lp, _pad_along(gt, list(x_t.shape), 1, a, b)  # zero gradient outside the text segment

    return fn_masked if control in MASKED else fn


def _softmax(x, dim, half_to_float):
    return torch.softmax(x, dim)


def _log_softmax(x, dim, half_to_float):
    return torch.log_softmax(x, dim)


def _reshape_alias(x, size, stride):
    return torch.reshape(x, size)


def _unsafe_view(x, size):
    return torch.reshape(x, size)


def _convert_element_type(x, dtype):
    return x.to(dtype)


def _pad_along(g, sizes, dim, start, end):
    """Place g in a zero tensor of shape sizes, occupying [start, end) along dim (cat with zeros: exports)."""
    parts = []
    if start > 0:
        sz = list(sizes)
        sz[dim] = start
        parts.append(torch.zeros(sz, dtype=g.dtype))
    parts.append(g)
    if end < sizes[dim]:
        sz = list(sizes)
        sz[dim] = sizes[dim] - end
        parts.append(torch.zeros(sz, dtype=g.dtype))
    return torch.cat(parts, dim) if len(parts) > 1 else g


def _select_backward(g, sizes, dim, index):
    dim = dim % len(sizes)
    index = index % sizes[dim]
    return _pad_along(g.unsqueeze(dim), sizes, dim, index, index + 1)


def _slice_backward(g, sizes, dim, start, end, step):
    if step != 1:
        raise NotImplementedError("slice_backward with step != 1")
    dim = dim % len(sizes)
    n = sizes[dim]
    start = max(0, min(n, start + n if start < 0 else start))
    end = max(start, min(n, end + n if end < 0 else end))
    return _pad_along(g, sizes, dim, start, end)


_REWRITE = {
    aten.select_backward.default: _select_backward,
    aten.slice_backward.default: _slice_backward,
    aten._softmax.default: _softmax,
    aten._log_softmax.default: _log_softmax,
    aten._reshape_alias.default: _reshape_alias,
    aten._unsafe_view.default: _unsafe_view,
}


def _rewrite(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    for node in list(gm.graph.nodes):
        if node.op != "call_function":
            continue
        if node.target in _REWRITE:
            node.target = _REWRITE[node.target]
        elif "convert_element_type" in str(node.target):
            node.target = _convert_element_type
    gm.graph.lint()
    gm.recompile()
    return gm


def trace(model: GuidanceClassifier, control: str, B: int) -> Tuple[torch.fx.GraphModule, tuple]:
    model.eval()
    c = model.cfg
    tshape, mshape = target_shape(model, control, B)
    ex = (torch.randn(B, c.canvas_len, c.d), torch.rand(B) * 1999, torch.rand(*tshape))
    if mshape:
        ex = ex + (torch.ones(*mshape),)
    for p in model.parameters():
        p.requires_grad_(False)
    gm = make_fx(grad_fn(model, control), decomposition_table=get_decompositions(DECOMPOSE))(*ex)
    return _rewrite(gm), ex


def export_grad_graph(model: GuidanceClassifier, control: str, B: int, path: str, opset: int = 14) -> Dict:
    gm, ex = trace(model, control, B)
    names = ["x_t", "t", "target"] + (["mask"] if control in MASKED else [])
    with torch.no_grad():
        torch.onnx.export(gm, ex, path, input_names=names, output_names=["logp", "grad"], opset_version=opset,
                          do_constant_folding=True)
    return {"inputs": names, "example": ex}


def reference(model: GuidanceClassifier, control: str, *inputs) -> Tuple[torch.Tensor, torch.Tensor]:
    """logp and d logp / d x_t by plain autograd (the check for the exported graph)."""
    model.eval()
    c = model.cfg
    x = inputs[0].detach().clone().requires_grad_(True)
    lp = logp_from_logits(control, model.logits(control, x[:, c.text_start:c.text_start + c.text_len], inputs[1]),
                          *inputs[2:])
    (g,) = torch.autograd.grad(lp.sum(), x)
    return lp.detach(), g
