"""Diffusion-LM denoiser (x0-parameterization) with a rounding head tied to the word embeddings.

Attention is written out by hand (no nn.TransformerEncoder fast path) so the graph exports to ONNX on torch 1.13.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .tokenizer import END


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
    # Recipe B (training/README.md): "mse" is Diffusion-LM's loss on a predicted x0; "ce" predicts logits over the
    # vocabulary and x0 = softmax(logits) @ E with E's rows at norm sqrt(d) (CDCD's score interpolation).
    objective: str = "mse"
    self_condition: bool = False  # the previous x0 estimate is an input (Analog Bits)
    clean_flags: bool = False     # a learned embedding marks positions given clean (DiffuSeq partial noising)
    # "ce" only: x0 = softmax(logits / x0_temperature) @ E. Training uses 1; an export may set a lower one, which
    # sharpens the estimate the sampler clamps and self-conditions on (chosen on dev, training/README.md)
    x0_temperature: float = 1.0

    def __post_init__(self) -> None:
        if not self.x0_temperature > 0 or (self.x0_temperature != 1.0 and self.objective != "ce"):
            raise ValueError(f"model.x0_temperature: {self.x0_temperature} (a positive number, for objective ce only)")

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
        if cfg.objective not in ("mse", "ce"):
            raise ValueError(f"model.objective: unknown value {cfg.objective!r} (known: mse, ce)")
        d_in = 2 * cfg.d if cfg.self_condition else cfg.d
        self.in_proj = nn.Sequential(nn.Linear(d_in, h), nn.Tanh(), nn.Linear(h, h))
        if cfg.clean_flags:
            self.clean_emb = nn.Parameter(torch.zeros(h))
        self.pos = nn.Parameter(torch.randn(cfg.length, h) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_dim, 4 * h), nn.SiLU(), nn.Linear(4 * h, h))
        self.ln_in = nn.LayerNorm(h)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.layers)])
        self.ln_out = nn.LayerNorm(h)
        if cfg.objective == "ce":
            self.out_proj = nn.Linear(h, cfg.vocab_size)
        else:
            self.out_proj = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, cfg.d))

    def embeddings(self) -> torch.Tensor:
        """The embedding table the diffusion runs in: raw for "mse", rows at norm sqrt(d) for "ce"."""
        e = self.emb.weight
        if self.cfg.objective == "ce":
            return e * (math.sqrt(self.cfg.d) / e.norm(dim=-1, keepdim=True).clamp(min=1e-6))
        return e

    def trunk_output(self, x_t: torch.Tensor, t: torch.Tensor, x_sc=None, clean=None) -> torch.Tensor:
        """The head's output: x0 [B, N, d] for "mse", logits [B, N, V] for "ce"."""
        N = x_t.shape[1]
        if self.cfg.self_condition:
            x_t = torch.cat([x_t, torch.zeros_like(x_t) if x_sc is None else x_sc], dim=-1)
        h = self.in_proj(x_t) + self.pos[:N].unsqueeze(0) + self.time_mlp(timestep_embedding(t, self.cfg.time_dim)).unsqueeze(1)
        if self.cfg.clean_flags and clean is not None:
            h = h + clean.unsqueeze(-1).to(h.dtype) * self.clean_emb
        h = self.drop(self.ln_in(h))
        for blk in self.blocks:
            h = blk(h)
        return self.out_proj(self.ln_out(h))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, x_sc=None, clean=None) -> torch.Tensor:
        """x_t [B, N, d], t [B] (training-scale timestep, float), optional previous x0 estimate x_sc [B, N, d] and
        clean flags [B, N] (1 = position given) -> predicted x0 [B, N, d]."""
        out = self.trunk_output(x_t, t, x_sc, clean)
        if self.cfg.objective == "ce":
            logits = out.float() if self.cfg.x0_temperature == 1.0 else out.float() / self.cfg.x0_temperature
            return torch.matmul(torch.softmax(logits, dim=-1), self.embeddings())
        return out

    def rounding_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Tied rounding head: logits[v] = -||x - EMB(v)||^2 up to a per-position constant (= 2 x.e - ||e||^2),
        so its argmax is the nearest embedding, the rule the sampler clamps and rounds with."""
        e = self.emb.weight
        return 2.0 * torch.matmul(x, e.t()) - (e * e).sum(-1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

def load_grown(model: nn.Module, state: dict) -> int:
    """Warm start from the weights of a shallower model of the same width (either family: both stack `Block`s in
    `model.blocks`): its blocks fill the first layers, and each extra block starts as the identity (its attention and
    MLP output projections zeroed, so the residual passes through), so the grown model computes exactly what the
    source did. Returns the layers added."""
    src_layers = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    added = model.cfg.layers - src_layers
    if added < 0:
        raise ValueError(f"train.init_from: the source has {src_layers} layers, more than model.layers "
                         f"({model.cfg.layers})")
    missing, unexpected = model.load_state_dict(state, strict=False)
    stray = [k for k in missing if not k.startswith("blocks.") or int(k.split(".")[1]) < src_layers]
    if stray or unexpected:
        raise ValueError(f"train.init_from: the source's shape differs from the model's beyond its depth "
                         f"(missing {stray[:3]}, unexpected {list(unexpected)[:3]})")
    with torch.no_grad():
        for blk in model.blocks[src_layers:]:
            for lin in (blk.attn.proj, blk.mlp[2]):
                lin.weight.zero_()
                lin.bias.zero_()
    return added


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


def ce_losses(model: Denoiser, ids: torch.Tensor, abar: torch.Tensor, text_start: int, p_record_clean: float = 0.5,
              p_text_clean: float = 0.25, p_tail_clean: float = 0.0, generator=None) -> dict:
    """Recipe B: cross-entropy x0 prediction with self-conditioning and partial noising, canvases ids [B, N].

    Per example, with p_record_clean the record segment (with <sep>) is given clean, with p_text_clean the text is,
    else everything is noised; clean positions carry the model's clean flag and get no loss. With p_tail_clean the
    text's <end> and the padding after it are also given clean, so the model learns to write a text of a given length
    (the engine holds <end> at the asked length). Half the batches feed a no-grad first estimate of x0 as the
    self-conditioning input (zeros otherwise)."""
    T = abar.shape[0]
    B, N = ids.shape
    dev = ids.device
    rand = lambda *shape: torch.rand(*shape, device=dev, generator=generator)  # noqa: E731
    e = model.embeddings()
    x0 = e[ids]
    t = torch.randint(0, T, (B,), device=dev, generator=generator)
    ab = abar[t].view(B, 1, 1)
    eps = torch.randn(x0.shape, device=dev, generator=generator)
    x_t = torch.sqrt(ab) * x0 + torch.sqrt(1.0 - ab) * eps
    pos = torch.arange(N, device=dev)
    clean = torch.zeros(B, N, dtype=torch.bool, device=dev)
    if text_start:
        u = rand(B)
        clean = torch.where((u < p_record_clean)[:, None], (pos < text_start)[None, :], clean)
        clean = torch.where(((u >= p_record_clean) & (u < p_record_clean + p_text_clean))[:, None],
                            (pos >= text_start)[None, :], clean)
        if p_tail_clean > 0:
            tail = torch.cumsum(((ids == END) & (pos >= text_start)[None, :]).int(), dim=1) > 0
            clean = clean | (tail & (rand(B) < p_tail_clean)[:, None])
    x_t = torch.where(clean.unsqueeze(-1), x0, x_t)
    flags = clean.float()
    x_sc = None
    if model.cfg.self_condition and float(rand(1)) < 0.5:
        with torch.no_grad():
            x_sc = model(x_t, t.float(), None, flags).detach()
    logits = model.trunk_output(x_t, t.float(), x_sc, flags).float()
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1), reduction="none").view(B, N)
    noised = (~clean).float()
    loss = ((ce * noised).sum(1) / noised.sum(1).clamp(min=1)).mean()
    with torch.no_grad():
        acc = ((logits.argmax(-1) == ids).float() * noised).sum() / noised.sum().clamp(min=1)
    return {"loss": loss, "acc": acc.detach()}
