"""Train the guidance classifiers (one shared trunk, five heads) on noised frozen embeddings, and evaluate them on
dev per noise level of the respaced sampling schedule."""
from __future__ import annotations

import math
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from training.dlm_train.schedule import respace

from .labels import GuidanceData
from .model import CONTROLS, ClassifierConfig, GuidanceClassifier

SAMPLING_STEPS = 200
EVAL_KS = [0, 50, 100, 150, 199]
# the whole-text attribute head (34-way names, 19-way "near") learns last when the trunk is shared: weigh it up
LOSS_WEIGHTS = {"pos": 1.0, "spans": 1.0, "attribute": 2.0, "length": 1.0, "sentiment": 1.0}


class TimedSteps:
    """The steps of a run bounded by a time budget (and optionally a step count): iterate it to get the step index,
    with the optimizer's learning rate set first (linear warmup over `warmup` steps, then cosine over the budget, or
    the step count when that is nearer, down to `floor` x lr). `.step` is the number of steps taken and `.seconds` the time since the start."""

    def __init__(self, opt: torch.optim.Optimizer, lr: float, budget_s: float, max_steps: Optional[int] = None,
                 floor: float = 0.1, warmup: int = 100):
        self.opt, self.lr, self.budget_s, self.max_steps, self.floor, self.warmup = opt, lr, budget_s, max_steps, floor, warmup
        self.t0 = time.time()
        self.step = 0

    @property
    def seconds(self) -> float:
        return time.time() - self.t0

    def __iter__(self):
        while True:
            el = self.seconds
            if el >= self.budget_s or (self.max_steps is not None and self.step >= self.max_steps):
                return
            # the schedule follows whichever bound is nearer, so a step-bounded run still decays to its floor
            frac = min(1.0, max(el / self.budget_s, self.step / self.max_steps if self.max_steps else 0.0))
            for pg in self.opt.param_groups:
                pg["lr"] = self.lr * min(1.0, (self.step + 1) / self.warmup) * \
                    (self.floor + (1.0 - self.floor) * 0.5 * (1 + math.cos(math.pi * frac)))
            yield self.step
            self.step += 1


def joint_update(model: torch.nn.Module, opt: torch.optim.Optimizer, ls: Dict[str, torch.Tensor], steps: TimedSteps,
                 hist: List[dict], log, tag: str) -> None:
    """One optimizer step on the weighted sum of the controls' losses (gradient norm clipped to 1), with the
    history and a log line every 200 steps."""
    loss = sum(LOSS_WEIGHTS[c] * v for c, v in ls.items())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    done = steps.step + 1
    if done % 200 == 0:
        hist.append({"step": done, "s": round(steps.seconds, 1), **{c: round(float(v), 4) for c, v in ls.items()}})
        log(f"[{tag}] step {done} {steps.seconds:.0f}s " + " ".join(f"{c}={float(v):.3f}" for c, v in ls.items()))


class Noiser:
    """x_t = sqrt(abar_s[k]) x0 + sqrt(1 - abar_s[k]) eps at a respaced step k; t = use[k] (training scale).
    x0 = EMB(w) + sqrt(1 - abar[0]) noise, as the denoiser is trained; 'clean' = EMB(w) exactly with t = 0."""

    def __init__(self, emb: np.ndarray, steps: int = SAMPLING_STEPS):
        self.emb = torch.from_numpy(emb)
        r = respace(steps)
        self.use = torch.from_numpy(r.use.astype(np.float32))
        self.abar = torch.from_numpy(r.abar.astype(np.float32))
        self.std0 = float(math.sqrt(1.0 - r.abar[0]))

    def __call__(self, ids: torch.Tensor, k: torch.Tensor, clean: torch.Tensor, g: Optional[torch.Generator] = None):
        x = self.emb[ids]
        B = ids.shape[0]
        x0 = x + self.std0 * torch.randn(x.shape, generator=g)
        ab = self.abar[k].view(B, 1, 1)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * torch.randn(x.shape, generator=g)
        c = clean.view(B, 1, 1)
        xt = torch.where(c, x, xt)
        t = torch.where(clean, torch.zeros(B), self.use[k])
        return xt, t


def _batch(data: GuidanceData, idx: np.ndarray, ts: int, Lt: int) -> Dict[str, torch.Tensor]:
    return {
        "ids": torch.from_numpy(data.ids[idx, ts:ts + Lt]),
        "pos": torch.from_numpy(data.pos[idx]), "spans": torch.from_numpy(data.spans[idx]),
        "attribute": torch.from_numpy(data.attr[idx]), "length": torch.from_numpy(data.length[idx]),
        "sentiment": torch.from_numpy(data.sentiment[idx]),
    }


def losses(model: GuidanceClassifier, x: torch.Tensor, t: torch.Tensor, b: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    h = model.trunk(x, t)
    out = {}
    for c in CONTROLS:
        lg = model.head(c, h)
        y = b[c]
        out[c] = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y.reshape(-1), ignore_index=-1)
    return out


def train_classifier(cfg: ClassifierConfig, emb: np.ndarray, text_start: int, train: GuidanceData, budget_s: float,
                     batch: int = 64, lr: float = 2e-3, clean_frac: float = 0.1, k_power: float = 2.0, seed: int = 0,
                     max_steps: Optional[int] = None, log=print, init: Optional[Dict] = None) -> Dict:
    """init: a previous run's {"state_dict", "run"} to continue from (a fresh warmup + cosine at lr); with
    init["partial"], only the tensors whose names and shapes match are taken (a smaller trunk warm-started from a
    larger one's input projection, first blocks and heads)."""
    prev = init["run"] if init else {"steps": 0, "seconds": 0.0}
    torch.manual_seed(seed + prev["steps"])
    g = torch.Generator().manual_seed(seed + prev["steps"])
    rng = np.random.default_rng(seed + prev["steps"])
    model = GuidanceClassifier(cfg)
    if init and init.get("partial"):
        own = model.state_dict()
        take = {k: v for k, v in init["state_dict"].items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(take, strict=False)
        log(f"classifiers: warm start from {len(take)} of {len(own)} tensors")
    elif init:
        model.load_state_dict(init["state_dict"])
    noiser = Noiser(emb)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    n = len(train.ids)
    hist = []
    model.train()
    steps = TimedSteps(opt, lr, budget_s, max_steps)
    for _ in steps:
        idx = rng.integers(0, n, size=batch)
        b = _batch(train, idx, text_start, cfg.text_len)
        # k = floor(S u^p): denser at low noise, where the features are learnt first (p = 1 is uniform)
        k = (torch.rand(batch, generator=g).pow(k_power) * SAMPLING_STEPS).long().clamp(max=SAMPLING_STEPS - 1)
        clean = torch.rand(batch, generator=g) < clean_frac
        x, t = noiser(b["ids"], k, clean, g)
        joint_update(model, opt, losses(model, x, t, b), steps, hist, log, "classifiers")
    model.eval()
    return {"model": model, "steps": prev["steps"] + steps.step, "seconds": round(prev["seconds"] + steps.seconds, 1),
            "history": prev.get("history", []) + hist, "batch": batch}


@torch.no_grad()
def evaluate(model: GuidanceClassifier, emb: np.ndarray, text_start: int, data: GuidanceData,
             ks: List = None, batch: int = 256, seed: int = 1234) -> Dict[str, Dict[str, float]]:
    """Dev accuracy per control and noise level: keys are respaced step indices k of the 200-step schedule
    (the denoiser's t = use[k]) and 'clean' (EMB(w) itself, t = 0).
    pos/spans: per text token (positions after the text excluded); attribute: per (text, field) whose value was
    seen in training, 'not mentioned' included; length: exact token count; sentiment: 3-way."""
    ks = ks if ks is not None else ["clean"] + EVAL_KS
    model.eval()
    noiser = Noiser(emb)
    Lt = model.cfg.text_len
    res: Dict[str, Dict[str, float]] = {c: {} for c in CONTROLS}
    n = len(data.ids)
    for kk in ks:
        g = torch.Generator().manual_seed(seed)
        hit = {c: 0 for c in CONTROLS}
        tot = {c: 0 for c in CONTROLS}
        for s in range(0, n, batch):
            idx = np.arange(s, min(n, s + batch))
            b = _batch(data, idx, text_start, Lt)
            B = len(idx)
            clean = torch.full((B,), kk == "clean")
            k = torch.full((B,), 0 if kk == "clean" else int(kk), dtype=torch.long)
            x, t = noiser(b["ids"], k, clean, g)
            h = model.trunk(x, t)
            intext = torch.arange(Lt)[None, :] < b["length"][:, None]
            for c in CONTROLS:
                pred = model.head(c, h).argmax(-1)
                y = b[c]
                if c in ("pos", "spans"):
                    m = intext
                elif c == "attribute":
                    m = y >= 0
                else:
                    m = torch.ones_like(y, dtype=torch.bool)
                hit[c] += int(((pred == y) & m).sum())
                tot[c] += int(m.sum())
        for c in CONTROLS:
            res[c][str(kk)] = round(hit[c] / max(1, tot[c]), 4)
    return res
