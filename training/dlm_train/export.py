"""Export a training run as a model bundle (docs/ARCHITECTURE.md, "Model bundle").

    python3 -m training.dlm_train.export --run training/runs/e2e-default --out models/e2e-default \
        [--id e2e-default --name "E2E restaurants (default)" --version 1.0.0] [--card-steps 200] [--verify-node]

Writes manifest.json, denoiser.onnx (EMA weights, dynamic batch), embeddings.f32, vocab.json, denoiser.pt (the same
EMA weights for the PyTorch reference sampler) and DATA_CARD.md (with samples from the reference sampler).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

import numpy as np
import torch

from . import sample as S
from .bundle import FORMAT, add_files_and_rehash, read_warm_start, write_manifest
from .reference_weights import round_weights_to_float16, save_reference_weights
from .paths import E2E_DATA, expand
from . import text_length as TL
from .data import CanvasLayout, E2E_FIELDS, canonical_record, encode_split, read_corpus
from .model import Denoiser, ModelConfig, ce_losses, diffusion_losses
from .schedule import MAX_SPACING, training_schedule
from .tokenizer import Tokenizer

E2E_ATTRIBUTION = (
    "Trained on the E2E NLG Challenge dataset (Novikova, Dušek and Rieser, \"The E2E Dataset: New Challenges for "
    "End-to-End Generation\", SIGDIAL 2017; https://github.com/tuetschek/e2e-dataset), licensed under CC BY-SA 4.0 "
    "(https://creativecommons.org/licenses/by-sa/4.0/). Changes: meaning representations were converted to JSON "
    "records, texts were tokenized, and examples longer than the canvas were dropped. The shipped weights and the "
    "sample outputs derived from the data are shared under the same license."
)


def load_run(run_dir: str, snapshot: Optional[str] = None):
    """The run's checkpoint and EMA denoiser; with `snapshot` (an ema-XXXXmin.pt the run wrote), that snapshot's
    weights, step and training time instead of the last checkpoint's."""
    ck = torch.load(os.path.join(run_dir, "ckpt.pt"), map_location="cpu", weights_only=False)  # our own run
    if snapshot:
        snap = torch.load(snapshot, map_location="cpu", weights_only=False)
        if snap.get("model_config") != ck["model_config"]:
            raise ValueError(f"{snapshot}: its model_config differs from {run_dir}/ckpt.pt's; not a snapshot of this run")
        ck = {**ck, "ema": snap["ema"], "snapshot": os.path.basename(snapshot),
              "state": {**ck["state"], "step": snap["step"], "train_time": snap["train_time_s"]}}
    mcfg = ModelConfig(**ck["model_config"])
    model = Denoiser(mcfg)
    model.load_state_dict(ck["ema"])
    model.eval()
    tok = Tokenizer.load(os.path.join(run_dir, "vocab.json"))
    with open(os.path.join(run_dir, "data.json"), encoding="utf-8") as f:
        data_info = json.load(f)
    log = []
    lp = os.path.join(run_dir, "log.jsonl")
    if os.path.exists(lp):
        with open(lp, encoding="utf-8") as f:
            log = [json.loads(ln) for ln in f if ln.strip()]
    if snapshot:  # the log up to the snapshot (a resumed run logs its last steps again: keep the later lines)
        log = [r for r in log if r.get("step", 0) <= ck["state"]["step"]]
    return ck, model, tok, data_info, log


@torch.no_grad()
def dev_metrics(model: Denoiser, tok: Tokenizer, layout: CanvasLayout, dev_path: str, cfg: dict, n: int = 512) -> dict:
    dev = read_corpus(dev_path)
    split = encode_split(tok, layout, dev)
    ids = torch.from_numpy(split.ids[:n])
    abar = torch.tensor(training_schedule(cfg["schedule"]["T"], cfg["schedule"]["s"]), dtype=torch.float32)
    g = torch.Generator().manual_seed(1234)
    ce = model.cfg.objective == "ce"
    tot = {"loss": 0.0, "acc": 0.0} if ce else {"loss": 0.0, "mse": 0.0, "nll": 0.0}
    batches = 0
    for i in range(0, len(ids), 128):
        out = (ce_losses(model, ids[i:i + 128], abar, layout.text_start, generator=g) if ce
               else diffusion_losses(model, ids[i:i + 128], abar, generator=g))
        for k in tot:
            tot[k] += float(out[k])
        batches += 1
    res = {f"dev_{k}": round(v / batches, 5) for k, v in tot.items()}
    res["dev_examples_scored"] = int(len(ids))
    res["dev_dropped"] = int(split.dropped)
    # rounding accuracy of the (clean) embeddings under the nearest-embedding rule
    e = model.embeddings()
    acc = (S.nearest(e[ids], e) == ids).float().mean()
    res["embedding_rounding_accuracy"] = round(float(acc), 5)
    return res


def denoiser_inputs(cfg: ModelConfig) -> dict:
    """The denoiser graph's inputs as the manifest lists them (recipe B adds x_self_cond and clean)."""
    ins = {"x_t": "float32[B,N,d]", "t": "float32[B]"}
    if cfg.self_condition:
        ins["x_self_cond"] = "float32[B,N,d]"
    if cfg.clean_flags:
        ins["clean"] = "float32[B,N]"
    return ins


def export_onnx(model: Denoiser, path: str, opset: int = 14) -> None:
    L, d = model.cfg.length, model.cfg.d
    names = list(denoiser_inputs(model.cfg))
    example = {"x_t": torch.randn(2, L, d), "t": torch.tensor([10.0, 1500.0]), "x_self_cond": torch.randn(2, L, d),
               "clean": (torch.rand(2, L) < 0.5).float()}
    extra = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        extra["dynamo"] = False  # the TorchScript exporter (newer torch defaults to the dynamo one)
    dyn = {k: {0: "B"} for k in names + ["x0"]}
    torch.onnx.export(model, tuple(example[k] for k in names), path, input_names=names, output_names=["x0"],
                      dynamic_axes=dyn, opset_version=opset, do_constant_folding=True, **extra)
    import onnx
    onnx.checker.check_model(onnx.load(path))


def verify_with_node(model: Denoiser, bundle_dir: str) -> dict:
    L, d = model.cfg.length, model.cfg.d
    g = torch.Generator().manual_seed(7)
    feeds = {"x_t": torch.randn(3, L, d, generator=g), "t": torch.tensor([0.0, 700.0, 1999.0])}
    if model.cfg.self_condition:
        feeds["x_self_cond"] = torch.randn(3, L, d, generator=g)
    if model.cfg.clean_flags:
        feeds["clean"] = (torch.rand(3, L, generator=g) < 0.5).float()
    with torch.no_grad():
        x0 = model(feeds["x_t"], feeds["t"], feeds.get("x_self_cond"), feeds.get("clean")) if len(feeds) > 2 \
            else model(feeds["x_t"], feeds["t"])
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"inputs": {k: {"dims": list(v.shape), "data": v.reshape(-1).tolist()} for k, v in feeds.items()},
                   "x0": x0.reshape(-1).tolist()}, f)
        case = f.name
    try:
        r = subprocess.run(["node", os.path.join(here, "onnx_check.mjs"), bundle_dir, case], capture_output=True,
                           text=True, cwd=os.path.dirname(os.path.dirname(here)), timeout=300)
    finally:
        os.unlink(case)
    if r.returncode != 0:
        raise RuntimeError(f"onnxruntime-node check failed: {r.stderr.strip()[-2000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    if not res["ok"] or res["maxDiff"] > 1e-3:
        raise RuntimeError(f"onnxruntime-node output differs from PyTorch: {res}")
    return res


def loss_summary(log: List[dict]) -> List[dict]:
    rows = [r for r in log if "step" in r and "loss" in r]
    if not rows:
        return []
    picks = sorted({0, len(rows) - 1, *[int(len(rows) * f) for f in (0.05, 0.1, 0.25, 0.5, 0.75, 0.9)]})
    return [rows[i] for i in picks if i < len(rows)]


def dev_records(dev_path: str, k: int) -> List[dict]:
    seen, out = set(), []
    for ex in read_corpus(dev_path):
        key = canonical_record(ex.record or {})
        if key not in seen:
            seen.add(key)
            out.append(ex.record)
    step = max(1, len(out) // k)
    return out[::step][:k]


def card_samples(ref: S.Reference, dev_path: Optional[str], n: int, steps: int, seed: int) -> dict:
    t0 = time.time()
    uncond = [S.decode(ref, r) for r in S.sample(ref, n, steps, seed)]
    d2t = []
    if ref.layout.record_len and dev_path and n:
        recs = dev_records(dev_path, n)
        givens, helds = zip(*[S.held_canvas(ref, r) for r in recs])
        ids = S.sample(ref, len(recs), steps, seed + 1, np.stack(givens), np.stack(helds))
        d2t = [{"record": canonical_record(r), "text": S.decode(ref, row)["text"]} for r, row in zip(recs, ids)]
    return {"unconditional": uncond, "data_to_text": d2t, "steps": steps, "seed": seed,
            "seconds": round(time.time() - t0, 1), "stats": sample_stats(uncond, d2t)}


def sample_stats(uncond: List[dict], d2t: List[dict]) -> dict:
    """Plain checks of the card samples: valid JSON records, and given record values that appear in the text."""
    st = {}
    if uncond and "record_valid_json" in uncond[0]:
        st["unconditional_valid_json_records"] = f"{sum(u['record_valid_json'] for u in uncond)}/{len(uncond)}"
    if d2t:
        vals = hits = 0
        for s in d2t:
            for k, v in json.loads(s["record"]).items():
                if k in ("name", "food", "near", "area", "eatType"):
                    vals += 1
                    hits += v.lower() in s["text"].lower()
        st["data_to_text_values_mentioned"] = f"{hits}/{vals} (name, eatType, food, area, near values found verbatim)"
    return st


def md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def data_card(m: dict, data_info: dict, log: List[dict], samples: dict, is_e2e: bool) -> str:
    tr = m["training"]
    lines = [f"# Data card: {m['name']} (`{m['id']}` {m['version']})", ""]
    lines += ["## What it is", "",
              f"A continuous diffusion language model (Diffusion-LM style: diffusion over learned {m['embedding']['dim']}-d "
              f"word embeddings, a bidirectional transformer denoiser predicting x0, sqrt schedule with T = "
              f"{m['schedule']['T']}) with {tr['parameters']:,} parameters. One canvas of {m['canvas']['length']} "
              f"tokens holds " + ("a JSON record, a separator and the text, so the model can generate both, describe "
                                   "a given record or structure a given text." if len(m['canvas']['segments']) > 1
                                   else "a text."), ""]
    lines += ["## Training data", "",
              f"- Corpus: `{tr['data']}` ({tr['license']}).",
              f"- Examples: {data_info['examples']} read, {data_info['kept']} used, **{data_info['dropped']} dropped** "
              f"because the record or the text did not fit its canvas segment.",
              f"- Vocabulary: {m['tokenizer']['size']} tokens built from the training split only (pieces seen at least "
              f"{tr['config']['data']['min_count']} times, every character seen, printable ASCII).",
              "- Split: trained on the training split only; the dev split was used for the dev loss and the sample "
              "records below; the test split was not used.", ""]
    lines += ["## Training budget", "",
              f"- Steps: {tr['steps']} at batch {tr['config']['train']['batch_size']} "
              f"({tr['steps'] * tr['config']['train']['batch_size']:,} canvases, "
              f"{tr['steps'] * tr['config']['train']['batch_size'] / max(1, data_info['kept']):.2f} epochs).",
              f"- Wall time: {tr['wall_time_s'] / 60:.1f} min of training ({tr['stopped']}).",
              *warm_start_lines(tr),
              *([f"- Length: the text's <end> and the padding after it were given clean in "
                 f"{tr['config']['train']['p_tail_clean']:.0%} of the examples, so the studio holds a length target "
                 f"(manifest denoiser.held_length)."] if m["denoiser"].get("held_length") else []),
              *([f"- {TL.card_lines(m['text_length'], m['text_length']['fitted_on'])[0]}"] if m.get("text_length") else []),
              *([f"- Sampling: the denoiser's x0 estimate is softmax(logits / {xt:g}) @ E (trained at 1; a sharper "
                 f"estimate for the sampler to clamp and self-condition on, chosen on dev MRs)."]
                if (xt := m["denoiser"].get("x0_temperature", 1.0)) != 1.0 else []),
              f"- Hardware: {tr['hardware']}.",
              f"- Optimizer: AdamW, lr {tr['config']['train']['lr']} with {tr['config']['train']['warmup']} warmup "
              f"steps then linear decay, grad clip {tr['config']['train']['grad_clip']}, EMA "
              f"{tr['config']['train']['ema_decay']} (the exported weights are the EMA weights).",
              f"- For comparison, the Diffusion-LM paper trained E2E for 200K steps at batch 64 on an A100 with an "
              f"80M-parameter denoiser; this model had far less compute, and its samples show it.", ""]
    summ = loss_summary(log)
    if summ:
        lines += ["## Loss curve (training, averaged over each logging window)", "",
                  "| step | loss | mse | rounding nll | token accuracy | lr |", "| --- | --- | --- | --- | --- | --- |"]
        cell = lambda r, k: f"{r[k]:.4f}" if k in r else "-"  # noqa: E731  (mse/nll: Diffusion-LM loss; acc: recipe B)
        lines += [f"| {r['step']} | {r['loss']:.4f} | {cell(r, 'mse')} | {cell(r, 'nll')} | {cell(r, 'acc')} | "
                  f"{r['lr']:.2e} |" for r in summ]
        lines.append("")
    if m.get("metrics"):
        lines += ["## Metrics", "", "```json", json.dumps(m["metrics"], indent=1), "```", ""]
    lines += ["## Samples", "",
              f"From the PyTorch reference sampler (`python3 -m training.dlm_train.sample`), {samples['steps']} "
              f"denoising steps, clamping on, seed {samples['seed']} (data-to-text: seed {samples['seed'] + 1}); "
              "not cherry-picked. `text` is the text segment up to `<end>`.", ""]
    if samples.get("stats"):
        lines += ["Checks: " + "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in samples["stats"].items()) + ".", ""]
    lines += sample_tables_and_license(samples, tr, is_e2e)
    return "\n".join(lines)


def sample_tables_and_license(samples: dict, tr: dict, is_e2e: bool) -> List[str]:
    """The data card's sample tables (unconditional; data-to-text with dev records held) and its license section."""
    return sample_tables(samples) + ["## License and attribution", "", E2E_ATTRIBUTION if is_e2e else
                                     f"Training data: {tr['data']} ({tr['license']}).", ""]


def sample_tables(samples: dict) -> List[str]:
    """The data card's sample tables: unconditional, and data-to-text with dev records held."""
    lines: List[str] = []
    if samples["unconditional"]:
        lines += [f"### {len(samples['unconditional'])} unconditional samples", "",
                  "| # | record | text |", "| --- | --- | --- |"]
        lines += [f"| {i} | `{md_escape(s.get('record', ''))}` | {md_escape(s['text'])} |"
                  for i, s in enumerate(samples["unconditional"])]
        lines.append("")
    if samples["data_to_text"]:
        lines += [f"### {len(samples['data_to_text'])} data-to-text samples (dev-set records held)", "",
                  "| # | record (given) | text |", "| --- | --- | --- |"]
        lines += [f"| {i} | `{md_escape(s['record'])}` | {md_escape(s['text'])} |"
                  for i, s in enumerate(samples["data_to_text"])]
        lines.append("")
    return lines


def warm_start_lines(tr: dict) -> List[str]:
    """The data card's warm start line for a manifest's `training` (none without a warm start)."""
    ws = tr.get("warm_start")
    if not ws:
        return []
    return [f"- Warm start: from {ws.get('bundle') or ws['from']}"
            + (f" ({float(ws.get('wall_time_s', 0.0)) / 60:.1f} min of training before), {tr['cumulative_wall_time_s'] / 60:.1f} "
               f"min in all." if 'cumulative_wall_time_s' in tr else ".")]


def warm_start_info(run_dir: str, train_time: float) -> dict:
    """A warm-started run's source (<run>/warm_start.json, written by train.py) and the cumulative training time."""
    start = read_warm_start(run_dir)
    if start is None:
        return {}
    return {"warm_start": start, "cumulative_wall_time_s": round(float(start.get("wall_time_s", 0.0)) + train_time, 1)}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="training run directory (holds ckpt.pt, vocab.json, data.json)")
    ap.add_argument("--snapshot", help="export this EMA snapshot of the run (snapshots/ema-XXXXmin.pt) instead of "
                    "the last checkpoint")
    ap.add_argument("--out", required=True, help="bundle directory to write (e.g. models/e2e-default)")
    ap.add_argument("--id")
    ap.add_argument("--name")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--dev", default=os.path.join(E2E_DATA, "devset.csv"),
                    help="dev split for dev metrics and data-to-text samples ('' to skip)")
    ap.add_argument("--card-samples", type=int, default=20)
    ap.add_argument("--card-steps", type=int, default=200)
    ap.add_argument("--card-seed", type=int, default=0)
    ap.add_argument("--hardware", help="override the hardware string recorded at training time")
    ap.add_argument("--verify-node", action="store_true", help="check denoiser.onnx in onnxruntime-node")
    ap.add_argument("--default-steps", type=int, help="manifest sampler_defaults.steps: the studio's step count for this "
                    "model when a run does not choose one (absent: 200)")
    ap.add_argument("--default-sampler", choices=["ancestral", "ddim", "dpm2m"], default="ancestral",
                    help="with --default-steps: sampler_defaults.method")
    ap.add_argument("--default-eta", type=float, default=0.0, help="with --default-sampler ddim: sampler_defaults.eta")
    ap.add_argument("--default-spacing", type=float, default=1.0, help="with --default-steps: sampler_defaults.spacing, "
                    "the step spacing exponent (1: evenly spaced; below 1: more steps at high noise)")
    ap.add_argument("--defaults-measured", default="", help="with --default-steps: how the defaults were chosen "
                    "(sampler_defaults.measured)")
    ap.add_argument("--text-length-quantile", type=float, default=None, help="a denoiser that holds a length with a "
                    "record segment: fit manifest text_length (the text length a record asks for, text_length.py) on "
                    "the run's training corpus at this residual quantile (absent: no rule)")
    ap.add_argument("--x0-temperature", type=float, default=1.0, help="recipe B: the exported denoiser's x0 is "
                    "softmax(logits / T) @ E (below 1: a sharper estimate; the graph, denoiser.pt's model_config and so "
                    "the reference sampler carry it)")
    args = ap.parse_args(argv)
    if args.default_steps is not None and not 1 <= args.default_steps <= 2000:
        ap.error(f"--default-steps {args.default_steps}: must be 1..2000")
    if not 0.0 < args.default_spacing <= MAX_SPACING:
        ap.error(f"--default-spacing {args.default_spacing}: must be in (0, {MAX_SPACING:g}]")

    ck, model, tok, data_info, log = load_run(args.run, args.snapshot)
    cfg = ck["config"]
    try:
        model.cfg = dataclasses.replace(model.cfg, x0_temperature=args.x0_temperature)  # checked by ModelConfig
    except ValueError as e:
        raise SystemExit(f"--x0-temperature: {e}")
    bid = args.id or cfg["name"]
    layout = CanvasLayout(data_info["canvas"]["length"],
                          next((s["length"] for s in data_info["canvas"]["segments"] if s["name"] == "record"), 0))
    os.makedirs(args.out, exist_ok=True)
    for stale in ("manifest.json",):
        if os.path.exists(os.path.join(args.out, stale)):
            os.remove(os.path.join(args.out, stale))

    round_weights_to_float16(model)  # the ONNX graph and denoiser.pt hold the same values
    export_onnx(model, os.path.join(args.out, "denoiser.onnx"))
    model.embeddings().detach().numpy().astype("<f4").tofile(os.path.join(args.out, "embeddings.f32"))
    shutil.copyfile(os.path.join(args.run, "vocab.json"), os.path.join(args.out, "vocab.json"))
    save_reference_weights(model, os.path.join(args.out, "denoiser.pt"))

    metrics = {}
    rows = [r for r in log if "loss" in r]
    if rows:
        tail = rows[-10:]
        metrics.update({f"train_{k}_final": round(sum(r[k] for r in tail) / len(tail), 5)
                        for k in ("loss", "mse", "nll", "acc") if k in tail[0]})
    if args.dev and layout.record_len:
        metrics.update(dev_metrics(model, tok, layout, args.dev, cfg))
    stop = next((r for r in reversed(log) if r.get("event") == "stop"), None)
    dc = cfg["data"]
    is_e2e = "e2e" in os.path.basename(dc["train"]).lower() or "e2e" in (dc.get("corpus_name") or "").lower() or \
        "/e2e/" in dc["train"]
    manifest = {
        "format": FORMAT,
        "id": bid,
        "version": args.version,
        "kind": "continuous-embedding-diffusion",
        "name": args.name or bid,
        "tokenizer": {"type": "surface-pieces/1", "vocab": "vocab.json", "size": len(tok)},
        "canvas": layout.to_json(),
        "embedding": {"file": "embeddings.f32", "dim": model.cfg.d, "dtype": "float32"},
        "schedule": {"type": "sqrt", "T": cfg["schedule"]["T"], "s": cfg["schedule"]["s"]},
        "denoiser": {"file": "denoiser.onnx", "inputs": denoiser_inputs(model.cfg),
                     "outputs": {"x0": "float32[B,N,d]"}, "opset": 14,
                     # trained with <end> and the padding after it given clean: the engine holds a length target
                     **({"held_length": True} if cfg["train"].get("p_tail_clean", 0) > 0 and model.cfg.clean_flags
                        else {}),
                     # the graph's x0 is softmax(logits / x0_temperature) @ E (informational: it is in the graph)
                     **({"x0_temperature": model.cfg.x0_temperature} if model.cfg.x0_temperature != 1.0 else {})},
        "record_schema": data_info.get("record_schema") or {"fields": {}},
        "files": [],
        "training": {
            "data": dc.get("corpus_name") or os.path.basename(dc["train"]),
            "license": dc.get("license") or ("CC BY-SA 4.0" if is_e2e else "unknown"),
            "steps": ck["state"]["step"],
            "wall_time_s": round(ck["state"]["train_time"], 1),
            **warm_start_info(args.run, ck["state"]["train_time"]),
            "stopped": (f"snapshot {ck['snapshot']}" if ck.get("snapshot") else
                        f"stopped by {stop['reason']}" if stop else "checkpoint"),
            "hardware": args.hardware or ck.get("hardware", "unknown"),
            "world_size": ck.get("world_size", 1),
            "parameters": model.num_parameters(),
            "exported_utc": dt.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "config": cfg,
        },
        "metrics": metrics,
        "reference": {"file": "denoiser.pt", "framework": "pytorch", "weights": "ema", "dtype": "float16",
                      "model_config": model.cfg.to_json()},
        "classifiers": [],
        "scorer": None,
    }
    if args.default_steps is not None:
        manifest["sampler_defaults"] = {"steps": args.default_steps, "method": args.default_sampler,
                                        **({"eta": args.default_eta} if args.default_sampler == "ddim" else {}),
                                        **({"spacing": args.default_spacing} if args.default_spacing != 1.0 else {}),
                                        **({"measured": args.defaults_measured} if args.defaults_measured else {})}
    if args.text_length_quantile is not None:
        if not (manifest["denoiser"].get("held_length") and layout.record_len):
            raise SystemExit("--text-length-quantile: the model does not hold a length (train.p_tail_clean) or has no "
                             "record segment")
        manifest["text_length"] = {**TL.fit(TL.corpus_pairs(tok, expand(dc["train"]), dc.get("limit")), args.text_length_quantile),
                                   "fitted_on": os.path.basename(dc["train"])}
    write_manifest(args.out, manifest)
    files = ["denoiser.onnx", "embeddings.f32", "vocab.json", "denoiser.pt"]
    add_files_and_rehash(args.out, files)
    if args.verify_node:
        r = verify_with_node(model, args.out)
        manifest["metrics"]["onnxruntime_node_max_abs_diff"] = r["maxDiff"]
        print(f"onnxruntime-node: {r}", flush=True)
    ref = S.from_model(model, tok, layout, cfg["schedule"]["T"], cfg["schedule"]["s"])
    samples = card_samples(ref, args.dev, args.card_samples, args.card_steps, args.card_seed)
    manifest["metrics"]["card_sampling_seconds"] = samples["seconds"]
    manifest["metrics"].update({f"card_{k}": v for k, v in samples["stats"].items()})
    with open(os.path.join(args.out, "DATA_CARD.md"), "w", encoding="utf-8") as f:
        f.write(data_card(manifest, data_info, log, samples, is_e2e))
    with open(os.path.join(args.out, "samples.json"), "w", encoding="utf-8") as f:
        json.dump(samples, f, ensure_ascii=False, indent=1)
    write_manifest(args.out, {**manifest, "files": []})
    m = add_files_and_rehash(args.out, files + ["DATA_CARD.md", "samples.json"])
    total = sum(f["bytes"] for f in m["files"])
    print(f"bundle {args.out}: {len(m['files'])} files, {total / 1e6:.2f} MB; steps {m['training']['steps']}; "
          f"metrics {json.dumps(m['metrics'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
