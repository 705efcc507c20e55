"""PyTorch reference sampler for masked bundles (docs/ARCHITECTURE.md, "Masked family"). The TypeScript engine
follows the same steps and PRNG draws, so both give the same tokens for the same seed.

    python3 -m training.dlm_train.masked_sample --bundle models/e2e-masked --samples 4
    python3 -m training.dlm_train.masked_sample --bundle ... --record 'name[The Vaults], eatType[pub]'
    python3 -m training.dlm_train.masked_sample --bundle ... --text 'The Vaults is a pub.' --json
    python3 -m training.dlm_train.masked_sample --run training/runs/e2e-masked     (EMA weights of a run)

The steps: every non-held position starts as the mask id; the positions to generate are split into blocks of
`block_length` in canvas order (semi-autoregressive, LLaDA); the steps are shared out over the blocks, and each step
of a block commits a fixed number of its masked positions: those whose proposed token has the highest confidence.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch

from .data import CanvasLayout, canonical_record, parse_mr
from .masked import MaskedConfig, MaskedDenoiser
from .prng import sample_seeds, uniforms
from .sample import decode as decode_canvas, held_canvas
from .tokenizer import Tokenizer

CONFIDENCES = ("low_confidence", "maskgit_plus", "topk_margin", "entropy", "origin")


@dataclass
class MaskedSettings:
    steps: int = 64
    block_length: int = 0
    confidence: str = "low_confidence"
    temperature: float = 0.0
    top_p: float = 1.0
    # the record segment's temperature (None: `temperature`); the engine's maskedRecordTemperature rule
    record_temperature: Optional[float] = None

    def check(self) -> None:
        if self.steps < 1:
            raise ValueError(f"sampler.steps must be >= 1, got {self.steps}")
        if self.confidence not in CONFIDENCES:
            raise ValueError(f"sampler.confidence: unknown value {self.confidence!r} (known: {', '.join(CONFIDENCES)})")
        if self.temperature < 0:
            raise ValueError(f"sampler.temperature must be >= 0, got {self.temperature}")
        if self.record_temperature is not None and self.record_temperature < 0:
            raise ValueError(f"sampler.record_temperature must be >= 0, got {self.record_temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"sampler.top_p must be in (0, 1], got {self.top_p}")


@dataclass
class MaskedReference:
    model: Callable[[torch.Tensor], torch.Tensor]  # ids [B, N] -> logits [B, N, V]
    tok: Tokenizer
    layout: CanvasLayout
    mask_id: int
    shifted: bool = False
    calls: List[int] = field(default_factory=list)  # batch rows sent to the network, per call


def step_plan(n_gen: int, settings: MaskedSettings) -> List[List[int]]:
    """For each block (consecutive chunks of the generated positions), how many positions each of its steps
    commits."""
    lb = settings.block_length
    nb = 1 if lb <= 0 or lb >= n_gen else -(-n_gen // lb)
    sizes = [n_gen] if nb == 1 else [min(lb, n_gen - b * lb) for b in range(nb)]
    plan = []
    for b, m in enumerate(sizes):
        s_b = max(1, settings.steps // nb + (1 if b < settings.steps % nb else 0))
        plan.append([m // s_b + (1 if i < m % s_b else 0) for i in range(s_b)])
    return plan


def propose(logits: np.ndarray, u_tok: float, u_ord: float, settings: MaskedSettings):
    """(token, confidence) for one masked position from its float64 logits (invalid ids already -inf)."""
    z = logits - logits.max()
    p = np.exp(z)
    p /= p.sum()
    if settings.temperature == 0:
        tok = int(np.argmax(p))
    else:
        zq = logits / settings.temperature
        q = np.exp(zq - zq.max())
        q /= q.sum()
        order = np.lexsort((np.arange(len(q)), -q))  # q descending, then lower id
        cum = np.cumsum(q[order])
        keep = int(np.searchsorted(cum, settings.top_p, side="left")) + 1
        kept = order[:min(keep, len(order))]
        w = q[kept] / q[kept].sum()
        hit = np.nonzero(np.cumsum(w) > u_tok)[0]
        tok = int(kept[hit[0]] if len(hit) else kept[-1])
    c = settings.confidence
    if c in ("low_confidence", "maskgit_plus"):
        conf = float(p[tok])
    elif c == "topk_margin":
        top2 = np.partition(p, -2)[-2:] if len(p) > 1 else np.array([0.0, p[0]])
        conf = float(top2.max() - top2.min())
    elif c == "entropy":
        nz = p[p > 0]
        conf = float((nz * np.log(nz)).sum())
    else:
        conf = float(u_ord)
    return tok, conf


@torch.no_grad()
def sample(ref: MaskedReference, n: int, settings: MaskedSettings, seed: int = 0,
           given: Optional[np.ndarray] = None, held: Optional[np.ndarray] = None, first_index: int = 0,
           trace: Optional[list] = None) -> np.ndarray:
    """Samples first_index .. first_index+n-1 of seed `seed`; returns ids [n, N]. given/held: [N] or [n, N]."""
    settings.check()
    N = ref.layout.length
    V_tok = len(ref.tok)
    held_b = np.zeros((n, N), dtype=bool) if held is None else np.broadcast_to(held, (n, N)).copy()
    x = np.full((n, N), ref.mask_id, dtype=np.int64)
    if given is not None:
        x = np.where(held_b, np.broadcast_to(given, (n, N)), x)
    seeds = [int(s) for s in sample_seeds(seed, first_index + n)[first_index:]]
    # the settings each position proposes under: the record segment at its own temperature
    in_record = np.zeros(N, dtype=bool)
    in_record[:ref.layout.record_len] = True
    record_settings = (replace(settings, temperature=settings.record_temperature)
                       if settings.record_temperature is not None else settings)
    at = lambda q: record_settings if in_record[q] else settings  # noqa: E731
    gen = [np.nonzero(~held_b[r])[0] for r in range(n)]
    # every row of a batch shares one plan when the rows hold the same positions (the usual case)
    plans = [step_plan(len(g), settings) for g in gen]
    total_steps = max(sum(len(p) for p in plan) for plan in plans)
    cursor = [(0, 0) for _ in range(n)]  # (block, step within block)
    logits_cache: Optional[np.ndarray] = None
    changed = True
    for g_step in range(total_steps):
        if changed or logits_cache is None:
            out = ref.model(torch.from_numpy(x)).float().numpy().astype(np.float64)
            ref.calls.append(n)
            if ref.shifted:
                out = np.concatenate([out[:, :1], out[:, :-1]], axis=1)
            out[:, :, V_tok:] = -np.inf
            if ref.mask_id < out.shape[2]:
                out[:, :, ref.mask_id] = -np.inf
            logits_cache = out
        changed = False
        for r in range(n):
            b, i = cursor[r]
            plan = plans[r]
            if b >= len(plan):
                continue
            u = uniforms(seeds[r], g_step * 2 * N, 2 * N)
            lb = settings.block_length
            block = gen[r] if len(plan) == 1 else gen[r][b * lb:(b + 1) * lb]
            masked = [int(q) for q in block if x[r, q] == ref.mask_id]
            k = plan[b][i]
            if k and masked:
                props = [(q,) + propose(logits_cache[r, q], float(u[q]), float(u[N + q]), at(q)) for q in masked]
                props.sort(key=lambda e: (-e[2], e[0]))
                for q, tok, _ in props[:k]:
                    x[r, q] = tok
                changed = True
            i += 1
            if i >= len(plan[b]):
                b, i = b + 1, 0
            cursor[r] = (b, i)
        if trace is not None:
            trace.append(x.copy())
    return x


def settings_from_defaults(defaults: dict, pinned: bool) -> MaskedSettings:
    """A bundle's sampler_defaults as settings. With nothing pinned (unconditional), `temperature_unconditional`
    (when given) replaces `temperature`: argmax decoding would give one sample whatever the seed; and
    `record_temperature_unconditional` (when given) is the record segment's, which a free run writes first."""
    s = MaskedSettings(**{k: v for k, v in defaults.items() if k in MaskedSettings.__dataclass_fields__})
    if not pinned and defaults.get("temperature_unconditional") is not None:
        s.temperature = float(defaults["temperature_unconditional"])
    if not pinned and defaults.get("record_temperature_unconditional") is not None:
        s.record_temperature = float(defaults["record_temperature_unconditional"])
    return s


def load_masked_bundle(bundle_dir: str) -> MaskedReference:
    from .bundle import verify_bundle
    m = verify_bundle(bundle_dir)
    if m.get("kind") != "masked-diffusion":
        raise ValueError(f"{bundle_dir}/manifest.json: field 'kind' is {m.get('kind')!r}, not 'masked-diffusion'")
    ref = m.get("reference")
    if not ref:
        raise ValueError(f"{bundle_dir}/manifest.json: field 'reference' (PyTorch weights) is missing")
    model = MaskedDenoiser(MaskedConfig(**ref["model_config"]))
    model.load_state_dict(torch.load(os.path.join(bundle_dir, ref["file"]), map_location="cpu", weights_only=True))
    model.eval()
    tok = Tokenizer.load(os.path.join(bundle_dir, m["tokenizer"]["vocab"]))
    segs = {sg["name"]: sg for sg in m["canvas"]["segments"]}
    layout = CanvasLayout(m["canvas"]["length"], segs["record"]["length"] if "record" in segs else 0)
    return MaskedReference(model, tok, layout, int(m["mask"]["id"]), bool(m["mask"].get("shifted_logits", False)))


def load_masked_run(run_dir: str, snapshot: Optional[str] = None) -> MaskedReference:
    ck = torch.load(snapshot or os.path.join(run_dir, "ckpt.pt"), map_location="cpu", weights_only=False)
    cfg = MaskedConfig(**ck["model_config"])
    model = MaskedDenoiser(cfg)
    model.load_state_dict(ck["ema"])
    model.eval()
    tok = Tokenizer.load(os.path.join(run_dir, "vocab.json"))
    with open(os.path.join(run_dir, "data.json"), encoding="utf-8") as f:
        canvas = json.load(f)["canvas"]
    segs = {sg["name"]: sg for sg in canvas["segments"]}
    layout = CanvasLayout(canvas["length"], segs["record"]["length"] if "record" in segs else 0)
    return MaskedReference(model, tok, layout, cfg.mask_id)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="models/e2e-masked")
    ap.add_argument("--run", help="sample from a training run's checkpoint (EMA weights) instead of a bundle")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--block-length", type=int)
    ap.add_argument("--confidence", choices=CONFIDENCES)
    ap.add_argument("--temperature", type=float)
    ap.add_argument("--top-p", type=float)
    ap.add_argument("--record-temperature", type=float,
                    help="the record segment's (default: --temperature when given, else the bundle's rule)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--record", help="data-to-text: a JSON object or an E2E MR 'name[...], eatType[...]'")
    ap.add_argument("--text", help="text-to-record: the text to structure")
    ap.add_argument("--json", action="store_true", help="print one JSON object per sample, with token ids")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ref = load_masked_run(args.run) if args.run else load_masked_bundle(args.bundle)
    defaults = {}
    if not args.run:
        from .bundle import read_manifest
        defaults = read_manifest(args.bundle).get("sampler_defaults", {})
    record = None
    if args.record:
        record = json.loads(args.record) if args.record.strip().startswith("{") else parse_mr(args.record, "--record")
    settings = settings_from_defaults(defaults, pinned=record is not None or args.text is not None)
    for k in ("steps", "block_length", "confidence", "temperature", "top_p", "record_temperature"):
        v = getattr(args, k)
        if v is not None:
            setattr(settings, k, v)
    if args.temperature is not None and args.record_temperature is None:
        settings.record_temperature = None  # one temperature for the whole canvas, as in the engine
    if record is not None and args.text is not None:
        raise SystemExit("give --record or --text, not both")
    given, held = (held_canvas(ref, record, args.text) if (record is not None or args.text is not None)
                   else (None, None))
    ids = sample(ref, args.samples, settings, args.seed, given, held)
    for j, row in enumerate(ids):
        out = decode_canvas(ref, row)
        if args.json:
            print(json.dumps({"index": j, "seed": args.seed, "settings": settings.__dict__, "network_calls": len(ref.calls),
                              **out, "ids": row.tolist()}, ensure_ascii=False))
        else:
            print(f"[{j}] {out.get('record', '')}\n    {out['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
