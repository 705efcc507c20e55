"""PyTorch reference sampler over a bundle's weights (docs/ARCHITECTURE.md, "Sampler" and "Shared PRNG").

    python3 -m training.dlm_train.sample --bundle models/e2e-default --samples 4 --steps 200 --seed 0
    python3 -m training.dlm_train.sample --bundle ... --record '{"name":"The Vaults","eatType":"pub"}'   (data-to-text)
    python3 -m training.dlm_train.sample --bundle ... --text 'The Vaults is a pub.'                   (text-to-record)
    python3 -m training.dlm_train.sample --bundle ... --sampler ddim --eta 0   (DDIM; --sampler dpm2m: DPM-Solver++(2M))
    python3 -m training.dlm_train.sample --bundle ... --json     (one JSON object per sample, with token ids)
    python3 -m training.dlm_train.sample --bundle ... --bench    (ms per denoising step at batch 8 and 64)
    python3 -m training.dlm_train.sample --run training/runs/e2e-default   (EMA weights of a run checkpoint)

Noise comes from the shared mulberry32 streams, so the TypeScript engine reproduces these outputs given the same
seed (up to float differences between ONNX Runtime and PyTorch, which can flip near-ties in rounding). The samplers
(ancestral, ddim, dpm2m) compute the same float64 step coefficients as src-main/engine/families/continuous/steps.ts.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch

from .bundle import read_manifest, verify_bundle
from .data import CanvasLayout, canonical_record, parse_mr
from .model import Denoiser, ModelConfig
from .prng import normals, sample_seeds
from .schedule import MAX_SPACING, respace
from .text_length import predict as predict_length
from .tokenizer import END, PAD, SEP, Tokenizer


@dataclass
class Reference:
    model: Denoiser
    emb: torch.Tensor  # [V, d] float32
    tok: Tokenizer
    layout: CanvasLayout
    T: int
    s: float
    # manifest text_length when the denoiser holds a length: data-to-text holds <end> where the record says
    text_length: Optional[dict] = None

    @property
    def d(self) -> int:
        return self.emb.shape[1]


def load_bundle(bundle_dir: str, verify: bool = True) -> Reference:
    m = verify_bundle(bundle_dir) if verify else read_manifest(bundle_dir)
    ref = m.get("reference")
    if not ref:
        raise ValueError(f"{bundle_dir}/manifest.json: field 'reference' (PyTorch weights) is missing")
    ck = torch.load(os.path.join(bundle_dir, ref["file"]), map_location="cpu", weights_only=True)
    model = Denoiser(ModelConfig(**ref["model_config"]))
    model.load_state_dict(ck)
    model.eval()
    tok = Tokenizer.load(os.path.join(bundle_dir, m["tokenizer"]["vocab"]))
    e = m["embedding"]
    raw = np.fromfile(os.path.join(bundle_dir, e["file"]), dtype="<f4")
    if raw.size != len(tok) * e["dim"]:
        raise ValueError(f"{bundle_dir}/{e['file']}: {raw.size} floats, expected vocab {len(tok)} x dim {e['dim']}")
    emb = torch.from_numpy(raw.reshape(len(tok), e["dim"]).copy())
    segs = {sg["name"]: sg for sg in m["canvas"]["segments"]}
    layout = CanvasLayout(m["canvas"]["length"], segs["record"]["length"] if "record" in segs else 0)
    rule = m.get("text_length") if m["denoiser"].get("held_length") else None
    return Reference(model, emb, tok, layout, m["schedule"]["T"], m["schedule"]["s"], rule)


def from_model(model: Denoiser, tok: Tokenizer, layout: CanvasLayout, T: int = 2000, s: float = 1e-4) -> Reference:
    model.eval()
    return Reference(model, model.embeddings().detach().clone(), tok, layout, T, s)


def load_run_reference(run_dir: str) -> Reference:
    from .export import load_run  # export imports this module
    ck, model, tok, data_info, _ = load_run(run_dir)
    segs = {sg["name"]: sg for sg in data_info["canvas"]["segments"]}
    layout = CanvasLayout(data_info["canvas"]["length"], segs["record"]["length"] if "record" in segs else 0)
    return from_model(model, tok, layout, ck["config"]["schedule"]["T"], ck["config"]["schedule"]["s"])


def nearest(x: torch.Tensor, emb: torch.Tensor, barred: Optional[tuple] = None) -> torch.Tensor:
    """ids of the nearest embedding (L2) per position; x [B, N, d] -> [B, N]. barred: (positions [B, N] bool,
    token ids) never chosen at those positions."""
    d2 = (x * x).sum(-1, keepdim=True) - 2.0 * torch.matmul(x, emb.t()) + (emb * emb).sum(-1)
    if barred is not None:
        where, ids = barred
        d2[..., ids] = torch.where(where.unsqueeze(-1), torch.tensor(float("inf")), d2[..., ids])
    return d2.argmin(-1)


def whitespace_ids(tok: Tokenizer) -> List[int]:
    """Whitespace-only tokens (the engine's whitespaceTokens): a held length bars them, the word count not seeing them."""
    return [i for i, t in enumerate(tok.tokens) if t and not t.strip()]


def barred_before_end(ref: Reference, given: np.ndarray, held: np.ndarray, n: int):
    """A held <end> in the text with free positions before it (a held length, as the engine's textExtent holds it):
    <end>, <pad> and whitespace-only tokens are never chosen there. None when no row has one."""
    L = ref.layout
    g = np.broadcast_to(given, (n, L.length))
    h = np.broadcast_to(held, (n, L.length))
    where = np.zeros((n, L.length), dtype=bool)
    for b in range(n):
        ends = [p for p in range(L.text_start, L.length) if h[b, p] and g[b, p] == END]
        if ends:
            where[b, L.text_start:ends[0]] = ~h[b, L.text_start:ends[0]]
    if not where.any():
        return None
    return torch.from_numpy(where), torch.tensor([END, PAD, *whitespace_ids(ref.tok)])


def held_canvas(ref: Reference, record: Optional[dict] = None, text: Optional[str] = None):
    """Token ids and a held mask for data-to-text (record given) or text-to-record (text given). Data-to-text with a
    bundle's text_length rule also holds <end> where the rule puts it, <pad> after (text_length.py)."""
    L = ref.layout
    ids = np.zeros(L.length, dtype=np.int64)
    held = np.zeros(L.length, dtype=bool)
    if record is not None:
        if not L.record_len:
            raise ValueError("bundle has no record segment")
        r = ref.tok.encode(canonical_record(record))
        if len(r) > L.record_len:
            raise ValueError(f"record: {len(r)} tokens, the record segment holds {L.record_len}")
        ids[:L.record_len] = r + [PAD] * (L.record_len - len(r))
        ids[L.record_len] = SEP
        held[:L.text_start] = True
        if text is None and getattr(ref, "text_length", None):  # the masked reference shares this, without a rule
            n = predict_length(ref.text_length, len(r), L.text_len)
            ids[L.text_start + n] = END
            ids[L.text_start + n + 1:] = PAD
            held[L.text_start + n:] = True
    if text is not None:
        t = ref.tok.encode(text) + [END]
        if len(t) > L.text_len:
            raise ValueError(f"text: {len(t) - 1} tokens, the text segment holds {L.text_len - 1}")
        ids[L.text_start:] = t + [PAD] * (L.text_len - len(t))
        held[L.text_start:] = True
        if L.record_len:
            ids[L.record_len] = SEP
            held[L.record_len] = True
    return ids, held


SAMPLERS = ("ancestral", "ddim", "dpm2m")


def _levels(sch, k: int):
    """alpha_t, sigma_t (the level x is at) and alpha_s, sigma_s (the level a step moves it to) at respaced step k."""
    ab, ap = float(sch.abar[k]), float(sch.abar_prev[k])
    return math.sqrt(ab), math.sqrt(1.0 - ab), math.sqrt(ap), math.sqrt(1.0 - ap)


def ddim_coefficients(sch, k: int, eta: float):
    """DDIM on x0: x_s = cx0 x0 + cx x + sd z (eps = (x - alpha_t x0) / sigma_t; eta 1 = the ancestral step)."""
    at, st, as_, ss = _levels(sch, k)
    ab, ap = float(sch.abar[k]), float(sch.abar_prev[k])
    sd = eta * math.sqrt(((1.0 - ap) / (1.0 - ab)) * (1.0 - ab / ap))
    direction = math.sqrt(max(0.0, ss * ss - sd * sd))
    return as_ - (direction * at) / st, direction / st, sd


def log_snr(abar: float) -> float:
    return 0.5 * (math.log(abar) - math.log(1.0 - abar))


def dpm2m_coefficients(sch, k: int, second_order: bool):
    """DPM-Solver++(2M) on x0: x_s = cx x + c0 x0 + c_prev x0_prev; first order without history and at k = 0."""
    at, st, as_, ss = _levels(sch, k)
    e_minus_h = (at * ss) / (st * as_)
    cx = ss / st
    base = as_ * (1.0 - e_minus_h)
    steps = len(sch.use)
    if not second_order or k == 0 or k + 1 >= steps:
        return cx, base, 0.0
    lam_t = log_snr(float(sch.abar[k]))
    h = log_snr(float(sch.abar_prev[k])) - lam_t
    h_prev = lam_t - log_snr(float(sch.abar[k + 1]))
    r = h_prev / h
    return cx, base * (1.0 + 1.0 / (2.0 * r)), -base / (2.0 * r)


@torch.no_grad()
def sample(ref: Reference, n: int, steps: int = 200, seed: int = 0, given: Optional[np.ndarray] = None,
           held: Optional[np.ndarray] = None, clamp: bool = True, first_index: int = 0,
           step_times: Optional[list] = None, sampler: str = "ancestral", eta: float = 0.0,
           spacing: float = 1.0) -> np.ndarray:
    """Run the sampler loop for samples first_index .. first_index+n-1 of seed `seed`; returns ids [n, N].
    given/held: [N] or [n, N] token ids and mask of positions held (infilling).
    sampler: ancestral (the DDPM posterior step), ddim (eta: 0 deterministic, 1 ancestral noise) or dpm2m
    (DPM-Solver++(2M)); every one clamps x0 and holds the given positions the same way.
    spacing: where the steps sit (schedule.respace_indices; 1 = evenly)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    L, d = ref.layout.length, ref.d
    sch = respace(steps, ref.T, ref.s, spacing)
    seeds = [int(x) for x in sample_seeds(seed, first_index + n)[first_index:]]
    nd = L * d

    def draw(k_index: int) -> torch.Tensor:  # k_index 0: x_T, then one per step k = S-1 .. 1
        return torch.from_numpy(np.stack([normals(sj, k_index * nd, nd) for sj in seeds]).reshape(n, L, d))

    emb = ref.emb
    barred = None
    if held is not None:
        held_t = torch.from_numpy(np.broadcast_to(held, (n, L)).copy()).unsqueeze(-1)
        given_emb = emb[torch.from_numpy(np.broadcast_to(given, (n, L)).copy())]
        barred = barred_before_end(ref, given, held, n)
    x = draw(0)
    cfg = ref.model.cfg
    # recipe-B inputs: the previous raw x0 estimate (zeros first) and the held positions as clean flags
    x_sc = torch.zeros(n, L, d) if cfg.self_condition else None
    clean = None
    if cfg.clean_flags:
        clean = held_t.squeeze(-1).float() if held is not None else torch.zeros(n, L)
    x0_prev = None  # dpm2m: the previous step's clamped x0
    for j, k in enumerate(range(steps - 1, -1, -1)):
        t0 = time.perf_counter()
        t = torch.full((n,), float(sch.use[k]), dtype=torch.float32)
        if held is not None and cfg.clean_flags:
            x = torch.where(held_t, given_emb, x)  # clean positions are given as their embeddings, not noised
        x0 = ref.model(x, t, x_sc, clean) if (cfg.self_condition or cfg.clean_flags) else ref.model(x, t)
        if x_sc is not None:
            x_sc = x0
        if clamp:
            x0 = emb[nearest(x0, emb, barred)]
        if held is not None:
            x0 = torch.where(held_t, given_emb, x0)
        if sampler == "ancestral":
            mean = float(sch.c1[k]) * x0 + float(sch.c2[k]) * x
            if k > 0:
                z = draw(j + 1)
                x = mean + float(np.sqrt(sch.var[k])) * z
                if held is not None:
                    ap = sch.abar_prev[k]
                    x = torch.where(held_t, float(np.sqrt(ap)) * given_emb + float(np.sqrt(1.0 - ap)) * z, x)
            else:
                x = mean
                if held is not None:
                    x = torch.where(held_t, given_emb, x)
        elif sampler == "ddim":
            # held positions take the same update (their x0 is their embedding)
            cx0, cx, sd = ddim_coefficients(sch, k, eta)
            x = cx0 * x0 + cx * x
            if eta > 0 and k > 0:
                x = x + sd * draw(j + 1)
        else:
            cx, c0, c_prev = dpm2m_coefficients(sch, k, x0_prev is not None)
            x = cx * x + c0 * x0 + (c_prev * x0_prev if c_prev != 0.0 else 0.0)
            x0_prev = x0
        x = x.float()
        if step_times is not None:
            step_times.append(time.perf_counter() - t0)
    return nearest(x, emb, barred).numpy()


def decode(ref: Reference, ids: Sequence[int]) -> dict:
    """record: surfaces of the record segment; text: surfaces of the text segment up to the first <end>."""
    L = ref.layout
    ids = [int(i) for i in ids]
    text_ids = ids[L.text_start:]
    if END in text_ids:
        text_ids = text_ids[:text_ids.index(END)]
    out = {"text": ref.tok.decode(text_ids)}
    if L.record_len:
        out["record"] = ref.tok.decode(ids[:L.record_len])
        try:
            out["record_valid_json"] = isinstance(json.loads(out["record"]), dict)
        except json.JSONDecodeError:
            out["record_valid_json"] = False
    return out


def bench(ref: Reference, steps: int = 20) -> dict:
    res = {}
    for b in (8, 64):
        times: list = []
        sample(ref, b, steps=steps, seed=1, step_times=times)
        res[b] = 1000.0 * float(np.median(times[1:] if len(times) > 1 else times))
    return res


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="models/e2e-default")
    ap.add_argument("--run", help="sample from a training run's checkpoint (EMA weights) instead of a bundle")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--record", help="data-to-text: a JSON object or an E2E MR 'name[...], eatType[...]'")
    ap.add_argument("--text", help="text-to-record: the text to structure")
    ap.add_argument("--no-clamp", action="store_true", help="do not replace x0 by its nearest embedding per step")
    ap.add_argument("--sampler", choices=SAMPLERS, default="ancestral",
                    help="ancestral (default), ddim (with --eta) or dpm2m (DPM-Solver++(2M))")
    ap.add_argument("--eta", type=float, default=0.0, help="DDIM's eta in [0, 1] (0: deterministic)")
    ap.add_argument("--spacing", type=float, default=1.0, help="step spacing exponent: step k of S at t = (T - 1) "
                    "(k / (S - 1))^spacing (1: evenly; below 1: more steps at high noise)")
    ap.add_argument("--json", action="store_true", help="print one JSON object per sample")
    ap.add_argument("--bench", action="store_true", help="print ms per denoising step at batch 8 and 64")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ref = load_run_reference(args.run) if args.run else load_bundle(args.bundle)
    if args.bench:
        r = bench(ref)
        print(json.dumps({"ms_per_step": {str(k): round(v, 2) for k, v in r.items()},
                          "threads": torch.get_num_threads(), "torch": torch.__version__}))
        return 0
    record = None
    if args.record:
        record = json.loads(args.record) if args.record.strip().startswith("{") else parse_mr(args.record, "--record")
    if record is not None and args.text is not None:
        raise SystemExit("give --record or --text, not both")
    given, held = (held_canvas(ref, record, args.text) if (record is not None or args.text is not None)
                   else (None, None))
    if not 0.0 <= args.eta <= 1.0:
        ap.error(f"--eta must be in [0, 1], got {args.eta}")
    if not 0.0 < args.spacing <= MAX_SPACING:
        ap.error(f"--spacing must be in (0, {MAX_SPACING:g}], got {args.spacing}")
    ids = sample(ref, args.samples, args.steps, args.seed, given, held, clamp=not args.no_clamp,
                 sampler=args.sampler, eta=args.eta, spacing=args.spacing)
    for j, row in enumerate(ids):
        out = decode(ref, row)
        if args.json:
            print(json.dumps({"index": j, "seed": args.seed, "steps": args.steps, "sampler": args.sampler,
                              **({"eta": args.eta} if args.sampler == "ddim" else {}), **out, "ids": row.tolist()},
                             ensure_ascii=False))
        else:
            print(f"[{j}] {out.get('record', '')}\n    {out['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
