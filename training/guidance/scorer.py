"""Autoregressive fluency scorer: a small causal transformer LM over text tokens (same vocabulary as the bundle).
Input: <sep> followed by the text tokens; it predicts each next token and finally <end>. Exported to ONNX with
dynamic batch and length (up to max_len)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from training.dlm_train.tokenizer import END, PAD, SEP

from .train import TimedSteps


@dataclass
class ScorerConfig:
    vocab_size: int
    max_len: int
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.1

    def to_json(self) -> dict:
        return asdict(self)


class CausalBlock(nn.Module):
    def __init__(self, cfg: ScorerConfig):
        super().__init__()
        h = cfg.hidden
        self.heads = cfg.heads
        self.scale = 1.0 / math.sqrt(h // cfg.heads)
        self.ln1 = nn.LayerNorm(h)
        self.qkv = nn.Linear(h, 3 * h)
        self.proj = nn.Linear(h, h)
        self.ln2 = nn.LayerNorm(h)
        self.mlp = nn.Sequential(nn.Linear(h, cfg.mlp_ratio * h), nn.GELU(), nn.Linear(cfg.mlp_ratio * h, h))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        dh = C // self.heads
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q = q.reshape(B, L, self.heads, dh).transpose(1, 2)
        k = k.reshape(B, L, self.heads, dh).transpose(1, 2)
        v = v.reshape(B, L, self.heads, dh).transpose(1, 2)
        att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale + bias, dim=-1)
        y = torch.matmul(self.drop(att), v).transpose(1, 2).reshape(B, L, C)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.ln2(x)))


class ScorerLM(nn.Module):
    def __init__(self, cfg: ScorerConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.tok = nn.Embedding(cfg.vocab_size, h)
        nn.init.normal_(self.tok.weight, std=0.02)
        self.pos = nn.Parameter(torch.randn(cfg.max_len, h) * 0.02)
        self.blocks = nn.ModuleList([CausalBlock(cfg) for _ in range(cfg.layers)])
        self.ln = nn.LayerNorm(h)
        self.drop = nn.Dropout(cfg.dropout)
        causal = torch.triu(torch.full((cfg.max_len, cfg.max_len), -1.0e4), diagonal=1)
        self.register_buffer("causal", causal)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens int64 [B, L] (L <= max_len) -> logits float32 [B, L, V] for the next token."""
        L = tokens.shape[1]
        x = self.drop(self.tok(tokens) + self.pos[:L].unsqueeze(0))
        bias = self.causal[:L, :L]
        for blk in self.blocks:
            x = blk(x, bias)
        return torch.matmul(self.ln(x), self.tok.weight.t())  # tied output embedding


def lm_tensors(ids: np.ndarray, text_start: int, text_len: int):
    """From canvases: inputs = <sep> + text tokens (+ <end>, <pad>...) shifted, targets = text, <end>, pads."""
    seg = torch.from_numpy(ids[:, text_start:text_start + text_len])
    inp = torch.cat([torch.full((seg.shape[0], 1), SEP, dtype=torch.long), seg[:, :-1]], dim=1)
    return inp, seg


def nll_sum(model: ScorerLM, inp: torch.Tensor, tgt: torch.Tensor):
    logits = model(inp)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), reduction="none").view(tgt.shape)
    m = (tgt != PAD).float()
    return (nll * m).sum(), m.sum(), (nll * m).sum(1) / m.sum(1)


def train_scorer(cfg: ScorerConfig, train_ids: np.ndarray, text_start: int, text_len: int, budget_s: float,
                 batch: int = 64, lr: float = 2e-3, seed: int = 0, max_steps: Optional[int] = None, log=print,
                 init: Optional[Dict] = None) -> Dict:
    """init: a previous run's {"state_dict", "run"} to continue from (a fresh warmup + cosine at lr)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + (init["run"]["steps"] if init else 0))
    model = ScorerLM(cfg)
    if init:
        model.load_state_dict(init["state_dict"])
    inp, tgt = lm_tensors(train_ids, text_start, text_len)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    steps = TimedSteps(opt, lr, budget_s, max_steps, floor=0.05)
    for _ in steps:
        idx = torch.from_numpy(rng.integers(0, len(inp), size=batch))
        s, n, _ = nll_sum(model, inp[idx], tgt[idx])
        loss = s / n
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (steps.step + 1) % 200 == 0:
            log(f"[scorer] step {steps.step + 1} {steps.seconds:.0f}s nll={float(loss):.3f}")
    model.eval()
    prev = init["run"] if init else {"steps": 0, "seconds": 0.0}
    return {"model": model, "steps": prev["steps"] + steps.step, "seconds": round(prev["seconds"] + steps.seconds, 1),
            "batch": batch}


@torch.no_grad()
def evaluate_scorer(model: ScorerLM, ids: np.ndarray, text_start: int, text_len: int, batch: int = 256) -> Dict:
    """Dev perplexity over text tokens and <end>: corpus level exp(total NLL / tokens), and the mean over texts of
    each text's exp(mean NLL) (the per-output score the studio shows)."""
    model.eval()
    inp, tgt = lm_tensors(ids, text_start, text_len)
    tot, cnt, per = 0.0, 0.0, []
    for s in range(0, len(inp), batch):
        a, b, m = nll_sum(model, inp[s:s + batch], tgt[s:s + batch])
        tot += float(a)
        cnt += float(b)
        per.append(torch.exp(m))
    return {"dev_perplexity": round(math.exp(tot / cnt), 3),
            "dev_mean_text_perplexity": round(float(torch.cat(per).mean()), 3), "dev_tokens": int(cnt)}


def export_scorer(model: ScorerLM, path: str, opset: int = 14) -> None:
    model.eval()
    ex = torch.full((2, 7), SEP, dtype=torch.long)
    ex[:, 1:] = 5
    with torch.no_grad():
        torch.onnx.export(model, (ex,), path, input_names=["tokens"], output_names=["logits"], opset_version=opset,
                          dynamic_axes={"tokens": {0: "B", 1: "L"}, "logits": {0: "B", 1: "L"}},
                          do_constant_folding=True)
