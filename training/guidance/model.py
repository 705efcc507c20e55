"""Guidance classifiers on noisy latents (Diffusion-LM style): one shared trunk over the text segment of the canvas
(the frozen diffusion embeddings, noised), with one head per control. Each control exports as its own ONNX graph
(trunk + that head), see export.py.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.dlm_train.model import timestep_embedding

CONTROLS = ["pos", "spans", "attribute", "length", "sentiment"]
NEG = -1.0e4  # logit bias for attribute classes a field does not have (finite: keeps gradients NaN-free)


@dataclass
class ClassifierConfig:
    d: int                      # embedding dim of the diffusion model
    canvas_len: int             # N
    text_start: int
    text_len: int               # Lt; length classes are 0..Lt-1 (the text holds up to Lt-1 tokens and <end>)
    n_pos: int
    n_spans: int
    fields: List[str]
    n_values: List[int]         # per field: values seen in training (class 0 "not mentioned" comes on top)
    hidden: int = 96
    layers: int = 2
    heads: int = 4
    mlp_ratio: int = 2
    dropout: float = 0.0       # tens of thousands of texts, a few thousand steps: no overfitting to fight
    time_dim: int = 64

    @property
    def kmax(self) -> int:
        return 1 + max(self.n_values) if self.n_values else 1

    def to_json(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    """Pre-LN bidirectional transformer block. q, k, v come from one projection split with chunk (its backward is
    a concat), not from selecting slices of a stacked tensor (whose backward pads with zeros that the exported
    gradient graph would store as large constants per batch size)."""

    def __init__(self, h: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        if h % heads:
            raise ValueError(f"hidden ({h}) must be divisible by heads ({heads})")
        self.heads = heads
        self.scale = 1.0 / math.sqrt(h // heads)
        self.ln1 = nn.LayerNorm(h)
        self.qkv = nn.Linear(h, 3 * h)
        self.proj = nn.Linear(h, h)
        self.ln2 = nn.LayerNorm(h)
        self.mlp = nn.Sequential(nn.Linear(h, mlp_ratio * h), nn.GELU(), nn.Linear(mlp_ratio * h, h))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        dh = C // self.heads
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q = q.reshape(B, L, self.heads, dh).transpose(1, 2)
        k = k.reshape(B, L, self.heads, dh).transpose(1, 2)
        v = v.reshape(B, L, self.heads, dh).transpose(1, 2)
        att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        y = torch.matmul(self.drop(att), v).transpose(1, 2).reshape(B, L, C)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.ln2(x)))


class GuidanceClassifier(nn.Module):
    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.in_proj = nn.Sequential(nn.Linear(cfg.d, h), nn.Tanh(), nn.Linear(h, h))
        self.pos_emb = nn.Parameter(torch.randn(cfg.text_len, h) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_dim, h), nn.SiLU(), nn.Linear(h, h))
        self.blocks = nn.ModuleList([Block(h, cfg.heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.layers)])
        self.ln_out = nn.LayerNorm(h)
        F_ = len(cfg.fields)
        self.head_pos = nn.Linear(h, cfg.n_pos)
        self.head_spans = nn.Linear(h, cfg.n_spans)
        # Whole-text heads pool per-position evidence with logsumexp over positions (a word such as "Italian" or
        # "not" anywhere in the text can carry the decision); class biases hold the priors (e.g. "not mentioned").
        self.attr_pos = nn.Linear(h, max(F_, 1) * cfg.kmax)
        self.attr_b = nn.Parameter(torch.zeros(max(F_, 1), cfg.kmax))
        cmask = torch.zeros(max(F_, 1), cfg.kmax)
        for f, n in enumerate(cfg.n_values):
            cmask[f, 1 + n:] = NEG
        self.register_buffer("attr_class_bias", cmask)
        # length n <=> <end> sits at text position n: one score per position
        self.len_pos = nn.Linear(h, 1)
        self.len_b = nn.Parameter(torch.zeros(cfg.text_len))
        self.sent_pos = nn.Linear(h, 3)
        self.sent_b = nn.Parameter(torch.zeros(3))

    def trunk(self, x_text: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.in_proj(x_text) + self.pos_emb.unsqueeze(0) + \
            self.time_mlp(timestep_embedding(t, self.cfg.time_dim)).unsqueeze(1)
        for blk in self.blocks:
            h = blk(h)
        return self.ln_out(h)

    def logits(self, control: str, x_text: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.head(control, self.trunk(x_text, t))

    def head(self, control: str, h: torch.Tensor) -> torch.Tensor:
        F_ = len(self.cfg.fields)
        if control == "pos":
            return self.head_pos(h)
        if control == "spans":
            return self.head_spans(h)
        if control == "attribute":
            B, L, _ = h.shape
            ev = self.attr_pos(h).reshape(B, L, -1, self.cfg.kmax)[:, :, :F_]     # [B, Lt, F, K]
            return torch.logsumexp(ev, dim=1) + self.attr_b[:F_] + self.attr_class_bias[:F_]
        if control == "length":
            return self.len_pos(h).squeeze(-1) + self.len_b
        if control == "sentiment":
            return torch.logsumexp(self.sent_pos(h), dim=1) + self.sent_b
        raise ValueError(f"unknown control {control!r} (expected one of {CONTROLS})")

    def attribute_head_selected(self, h: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
        """The attribute head scored for S chosen fields only: select [B, S, F] holds one one-hot row per slot (or a
        zero row for an unused slot). Slot s gets exactly the logits that head("attribute") gives its field, but the
        per-position evidence and its logsumexp pooling cover S fields instead of all F, which is most of the head's
        cost when a constraint set names one field (the joint graph's one-field variant, joint.py)."""
        B, L, H = h.shape
        F_, K = len(self.cfg.fields), self.cfg.kmax
        S = select.shape[1]
        w = self.attr_pos.weight[:F_ * K].reshape(F_, K * H)       # output row f*K + k belongs to field f, class k
        w_sel = torch.matmul(select, w).reshape(B, S * K, H)
        b_sel = torch.matmul(select, self.attr_pos.bias[:F_ * K].reshape(F_, K)).reshape(B, 1, S * K)
        ev = (torch.matmul(h, w_sel.transpose(1, 2)) + b_sel).reshape(B, L, S, K)
        prior = torch.matmul(select, self.attr_b[:F_] + self.attr_class_bias[:F_])   # [B, S, K]
        return torch.logsumexp(ev, dim=1) + prior


def logp_from_logits(control: str, logits: torch.Tensor, target: torch.Tensor,
                     mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """log p(target | x_t, t) per sample [B]: sum over targeted items of sum_c target_c log softmax(logits)_c."""
    lsm = torch.log_softmax(logits, dim=-1)
    per = (target * lsm).sum(-1)
    if control in ("pos", "spans", "attribute"):
        return (per * mask).sum(-1)
    return per


def one_hot(idx: torch.Tensor, n: int) -> torch.Tensor:
    return F.one_hot(idx.clamp(min=0), n).float()
