"""Masked (absorbing-state) diffusion over the canvas, in the MDLM / LLaDA way.

The denoiser maps token ids [B, N] (the mask id allowed anywhere) to logits [B, N, V] over the real vocabulary
(the mask id is never predicted). There is no time input: the share of masks tells the model how far along it is.

Training: per example t ~ U(eps, 1); each token of the segments being generated is masked with probability t;
the loss is the cross-entropy on the masked tokens weighted by 1/t (the MDLM bound), averaged over the generated
positions. Partial masking (DiffuSeq-style, for the masked family): a share of examples masks only the text (the
record is given, data-to-text) and a share only the record (text-to-record), so one model serves both.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import Block, ModelConfig

MASKED_KIND = "masked-diffusion"


@dataclass
class MaskedConfig:
    vocab_size: int  # real tokens; the mask id is vocab_size
    length: int
    hidden: int = 256
    layers: int = 6
    heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    def to_json(self) -> dict:
        return asdict(self)


class MaskedDenoiser(nn.Module):
    def __init__(self, cfg: MaskedConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.tok = nn.Embedding(cfg.vocab_size + 1, h)
        nn.init.normal_(self.tok.weight, std=0.02)
        self.pos = nn.Parameter(torch.randn(cfg.length, h) * 0.02)
        self.drop = nn.Dropout(cfg.dropout)
        block_cfg = ModelConfig(vocab_size=cfg.vocab_size, length=cfg.length, hidden=h, layers=cfg.layers,
                                heads=cfg.heads, mlp_ratio=cfg.mlp_ratio, dropout=cfg.dropout)
        self.blocks = nn.ModuleList([Block(block_cfg) for _ in range(cfg.layers)])
        self.ln_out = nn.LayerNorm(h)
        self.head = nn.Linear(h, cfg.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids int64 [B, N] -> logits float32 [B, N, V]."""
        N = ids.shape[1]
        h = self.drop(self.tok(ids) + self.pos[:N].unsqueeze(0))
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln_out(h)).float()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def segment_masks(length: int, text_start: int, device=None):
    """Boolean [N] masks of the record segment (with <sep>) and of the text segment."""
    pos = torch.arange(length, device=device)
    return pos < text_start, pos >= text_start


def masked_losses(model: MaskedDenoiser, ids: torch.Tensor, text_start: int, eps: float = 1e-3,
                  p_text_only: float = 0.5, p_record_only: float = 0.25, generator=None,
                  p_substitute: float = 0.0, visible_weight: float = 0.0) -> dict:
    """MDLM loss on canvases ids [B, N]; text_start = 0 for text-only corpora (everything is generated).

    p_substitute > 0 also replaces that share of the visible generated tokens with tokens drawn from elsewhere in the
    batch (a draw from the corpus' own token frequencies), and visible_weight adds the cross-entropy of the clean
    token at every visible generated position, so that the logits at committed positions become calibrated
    probabilities of the tokens there (what remasking by context ranks by). Without them those logits are never
    trained, yet they still rank a token against its context (e2e-masked 1.0.2: AUC 0.98 for swapped dev tokens).
    A first run at 0.1 / 0.5 calibrated clean tokens but ranked swapped ones worse (training/README.md)."""
    B, N = ids.shape
    dev = ids.device
    rand = lambda *shape: torch.rand(*shape, device=dev, generator=generator)  # noqa: E731
    t = eps + (1.0 - eps) * rand(B)
    rec_seg, text_seg = segment_masks(N, text_start, dev)
    if text_start:
        u = rand(B)
        gen_text = (u < p_text_only) | (u >= p_text_only + p_record_only)
        gen_rec = u >= p_text_only
        eligible = (gen_text[:, None] & text_seg[None, :]) | (gen_rec[:, None] & rec_seg[None, :])
    else:
        eligible = torch.ones(B, N, dtype=torch.bool, device=dev)
    masked = eligible & (rand(B, N) < t[:, None])
    x = torch.where(masked, torch.full_like(ids, model.cfg.mask_id), ids)
    visible = eligible & ~masked
    substituted = torch.zeros_like(visible)
    if p_substitute > 0:
        pool = ids[eligible]
        draw = pool[torch.randint(0, pool.numel(), (B, N), device=dev, generator=generator)]
        substituted = visible & (rand(B, N) < p_substitute) & (draw != ids)
        x = torch.where(substituted, draw, x)
    logits = model(x)
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids.reshape(-1), reduction="none").view(B, N)
    per_example = (ce * masked).sum(1) / t / eligible.sum(1).clamp(min=1)
    loss = per_example.mean()
    out = {}
    if visible_weight > 0:
        vis_ce = (ce * visible).sum() / visible.sum().clamp(min=1)
        loss = loss + visible_weight * vis_ce
        out["visible_ce"] = vis_ce.detach()
        with torch.no_grad():
            fixed = ((logits.argmax(-1) == ids) & substituted).sum() / substituted.sum().clamp(min=1)
        out["substitute_fixed"] = fixed
    with torch.no_grad():
        acc = ((logits.argmax(-1) == ids) & masked).sum() / masked.sum().clamp(min=1)
    return {"loss": loss, "masked_acc": acc.detach(),
            "mask_share": (masked.sum() / eligible.sum().clamp(min=1)).detach(), **out}
