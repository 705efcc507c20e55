"""Diffusion-LM denoiser (x0-parameterization) with a rounding head tied to the word embeddings.

Attention is written out by hand (no nn.TransformerEncoder fast path) so the graph exports to ONNX on torch 1.13.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelConfig:
    vocab_size: int
    length: int
    d: int = 16
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.1
    time_dim: int = 128

    def to_json(self) -> dict:
        return asdict(self)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"model.hidden ({hidden}) must be divisible by model.heads ({heads})")
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        dh = C // self.heads
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(dh))
        att = self.drop(torch.softmax(att, dim=-1))
        y = torch.matmul(att, v).transpose(1, 2).reshape(B, N, C)
        return self.drop(self.proj(y))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h = cfg.hidden
        self.ln1 = nn.LayerNorm(h)
        self.attn = SelfAttention(h, cfg.heads, cfg.dropout)
        self.ln2 = nn.LayerNorm(h)
        self.mlp = nn.Sequential(nn.Linear(h, cfg.mlp_ratio * h), nn.GELU(), nn.Linear(cfg.mlp_ratio * h, h),
                                 nn.Dropout(cfg.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Denoiser(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.emb = nn.Embedding(cfg.vocab_size, cfg.d)
        nn.init.normal_(self.emb.weight, std=1.0)
        self.in_proj = nn.Sequential(nn.Linear(cfg.d, h), nn.Tanh(), nn.Linear(h, h))
        self.pos = nn.Parameter(torch.randn(cfg.length, h) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_dim, 4 * h), nn.SiLU(), nn.Linear(4 * h, h))
        self.ln_in = nn.LayerNorm(h)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.layers)])
        self.ln_out = nn.LayerNorm(h)
        self.out_proj = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, cfg.d))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t [B, N, d], t [B] (training-scale timestep, float) -> predicted x0 [B, N, d]."""
        N = x_t.shape[1]
        h = self.in_proj(x_t) + self.pos[:N].unsqueeze(0) + self.time_mlp(timestep_embedding(t, self.cfg.time_dim)).unsqueeze(1)
        h = self.drop(self.ln_in(h))
        for blk in self.blocks:
            h = blk(h)
        return self.out_proj(self.ln_out(h))

    def rounding_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Tied rounding head: logits[v] = -||x - EMB(v)||^2 up to a per-position constant (= 2 x.e - ||e||^2),
        so its argmax is the nearest embedding, the rule the sampler clamps and rounds with."""
        e = self.emb.weight
        return 2.0 * torch.matmul(x, e.t()) - (e * e).sum(-1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def diffusion_losses(model: Denoiser, ids: torch.Tensor, abar: torch.Tensor, generator=None) -> dict:
    """Diffusion-LM training losses for a batch of canvases ids [B, N].

    x0 ~ N(EMB(w), (1 - abar[0]) I); x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps; t ~ U{0..T-1}.
    mse: ||f(x_t, t) - x0||^2 (target EMB(w) at t = 0); nll: rounding cross-entropy on x0;
    prior: ||sqrt(abar_{T-1}) x0||^2. All means over positions (and dims)."""
    T = abar.shape[0]
    B = ids.shape[0]
    x_mean = model.emb(ids)
    std0 = torch.sqrt(1.0 - abar[0])
    x0 = x_mean + std0 * torch.randn(x_mean.shape, device=ids.device, generator=generator)
    t = torch.randint(0, T, (B,), device=ids.device, generator=generator)
    ab = abar[t].view(B, 1, 1)
    eps = torch.randn(x0.shape, device=ids.device, generator=generator)
    x_t = torch.sqrt(ab) * x0 + torch.sqrt(1.0 - ab) * eps
    pred = model(x_t, t.float())
    target = torch.where((t == 0).view(B, 1, 1), x_mean, x0)
    mse = ((pred - target) ** 2).mean(dim=(1, 2))
    prior = ((torch.sqrt(abar[-1]) * x0) ** 2).mean(dim=(1, 2))
    logits = model.rounding_logits(x0)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1), reduction="none").view(B, -1).mean(1)
    loss = (mse + nll + prior).mean()
    return {"loss": loss, "mse": mse.mean().detach(), "nll": nll.mean().detach(), "prior": prior.mean().detach()}
