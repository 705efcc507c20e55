"""Export a masked-diffusion training run as a model bundle (docs/ARCHITECTURE.md, "Masked family").

    python3 -m training.dlm_train.masked_export --run training/runs/e2e-masked --out models/e2e-masked \
        [--id e2e-masked --name "E2E restaurants (masked)" --version 1.0.0] [--snapshot <ema-...pt>] \
        [--keep-from <bundle>]
    python3 -m training.dlm_train.masked_export --redraw-samples models/e2e-masked   (after its sampler_defaults changed)

--keep-from carries what a bundle measured around its denoiser into the new one: the guidance classifiers and
lexicons, the fluency scorer, guidance_defaults, joint_guidance and sampler_defaults, with their files and their
data card sections. They read token ids, not the denoiser, so they hold for new weights over the same vocabulary
and canvas (a warm start keeps both); anything else is refused by name.

Writes manifest.json (kind "masked-diffusion"), denoiser.onnx (ids int64[B,N] -> logits float32[B,N,V], EMA
weights, dynamic batch), vocab.json, denoiser.pt (the same weights for the PyTorch reference sampler),
DATA_CARD.md and samples.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import shutil
import sys
import time
from typing import List, Optional

import numpy as np
import torch

from . import masked_sample as M
from . import text_end
from .bundle import FORMAT, add_files_and_rehash, read_manifest, set_card_section, write_manifest
from .reference_weights import round_weights_to_float16, save_reference_weights
from .data import CanvasLayout, canonical_record
from .dev_eval import bleu_report, dev_mrs
from .export import dev_records, loss_summary, sample_tables, sample_tables_and_license, warm_start_info, warm_start_lines
from .masked import MASKED_KIND, MaskedConfig, MaskedDenoiser
from .paths import E2E_DATA, expand
from .sample import decode, held_canvas
from .tokenizer import Tokenizer


def export_onnx(model: MaskedDenoiser, path: str, opset: int = 17) -> None:
    ids = torch.randint(0, model.cfg.vocab_size + 1, (2, model.cfg.length))
    extra = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(model, (ids,), path, input_names=["ids"], output_names=["logits"],
                      dynamic_axes={"ids": {0: "B"}, "logits": {0: "B"}}, opset_version=opset,
                      do_constant_folding=True, **extra)
    import onnx
    onnx.checker.check_model(onnx.load(path))


def check_onnx(model: MaskedDenoiser, path: str) -> Optional[float]:
    """Max |logits| difference between onnxruntime (Python) and PyTorch on random partly masked canvases; None
    where the onnxruntime wheel is not installed (Debian's Python has none; the engine's tests check the graph)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, model.cfg.vocab_size, (3, model.cfg.length), generator=g)
    ids[torch.rand(ids.shape, generator=g) < 0.5] = model.cfg.mask_id
    with torch.no_grad():
        want = model(ids).numpy()
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"ids": ids.numpy()})[0]
    return float(np.abs(got - want).max())


def card_samples(ref: M.MaskedReference, sampler_defaults: dict, dev_path: Optional[str], n: int, seed: int) -> dict:
    """The card's samples under a bundle's sampler_defaults: unconditional ones as a run that pins nothing takes them,
    data-to-text ones as a pinned run does (the reference sampler's settings_from_defaults)."""
    t0 = time.time()
    settings = M.settings_from_defaults(sampler_defaults, pinned=True)
    uncond_settings = M.settings_from_defaults(sampler_defaults, pinned=False)
    # --card-samples 0: no samples on the card (the sampler has nothing to plan for an empty batch)
    uncond = [decode(ref, r) for r in M.sample(ref, n, uncond_settings, seed)] if n > 0 else []
    d2t = []
    if ref.layout.record_len and dev_path and n > 0:
        recs = dev_records(dev_path, n)
        givens, helds = zip(*[held_canvas(ref, r) for r in recs])
        ids = M.sample(ref, len(recs), settings, seed + 1, np.stack(givens), np.stack(helds))
        d2t = [{"record": canonical_record(r), "text": decode(ref, row)["text"]} for r, row in zip(recs, ids)]
    return {"unconditional": uncond, "data_to_text": d2t, "settings": settings.__dict__,
            "unconditional_settings": uncond_settings.__dict__, "seed": seed,
            "seconds": round(time.time() - t0, 1)}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="the training run to export (required unless --redraw-samples)")
    ap.add_argument("--redraw-samples", metavar="BUNDLE", help="only draw this bundle's card samples again under its "
                    "manifest's sampler_defaults (samples.json and the card's Samples section), with --dev and --card-samples")
    ap.add_argument("--snapshot", help="export this EMA snapshot instead of the run's checkpoint")
    ap.add_argument("--out", help="the bundle folder to write (required unless --redraw-samples)")
    ap.add_argument("--id")
    ap.add_argument("--name")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--dev", default=os.path.join(E2E_DATA, "devset.csv"))
    ap.add_argument("--steps", type=int, default=64, help="default sampling steps written to the manifest")
    ap.add_argument("--block-length", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--temperature-unconditional", type=float, default=0.5,
                    help="default temperature when nothing is pinned (argmax would give one sample for every seed)")
    ap.add_argument("--record-temperature-unconditional", type=float, default=1.0,
                    help="the record segment's default temperature when nothing is pinned: a free run writes its "
                    "record first, and at the text's temperature it settles on a few restaurants (< 0: none)")
    ap.add_argument("--card-samples", type=int, default=20)
    ap.add_argument("--dev-mrs", type=int, default=100, help="dev MRs for the BLEU in the manifest (0: skip)")
    ap.add_argument("--keep-from", help="a bundle whose classifiers, lexicons, scorer, guidance and sampler defaults "
                    "the new bundle keeps (same vocabulary and canvas)")
    args = ap.parse_args(argv)
    if args.redraw_samples:
        samples = redraw_card_samples(args.redraw_samples, args.dev or None, args.card_samples)
        print(f"{args.redraw_samples}: {len(samples['unconditional'])} unconditional and "
              f"{len(samples['data_to_text'])} data-to-text card samples drawn again ({samples['seconds']} s)", flush=True)
        return 0
    if not args.run or not args.out:
        ap.error("--run and --out are required (or --redraw-samples BUNDLE)")
    kept = read_manifest(args.keep_from) if args.keep_from else None
    if kept is not None and os.path.abspath(args.keep_from) == os.path.abspath(args.out):
        raise SystemExit(f"--keep-from {args.keep_from}: is the --out bundle itself; export to another folder first")

    ck_path = os.path.join(args.run, "ckpt.pt")
    run_ck = torch.load(ck_path, map_location="cpu", weights_only=False) if os.path.exists(ck_path) else None
    ck = torch.load(args.snapshot, map_location="cpu", weights_only=False) if args.snapshot else run_ck
    if ck is None:
        raise SystemExit(f"{args.run}: no ckpt.pt; give --snapshot (e.g. an ema.pt joined from a GPU run's parts)")
    run_ck = run_ck or ck  # a GPU run's ema.pt carries its own config and hardware
    if ck.get("family") != "masked":
        raise SystemExit(f"{args.run}: not a masked-diffusion run (family {ck.get('family')!r})")
    cfg = run_ck["config"]
    mcfg = MaskedConfig(**ck["model_config"])
    model = MaskedDenoiser(mcfg)
    model.load_state_dict(ck["ema"])
    model.eval()
    tok = Tokenizer.load(os.path.join(args.run, "vocab.json"))
    with open(os.path.join(args.run, "data.json"), encoding="utf-8") as f:
        data_info = json.load(f)
    log = []
    lp = os.path.join(args.run, "log.jsonl")
    if os.path.exists(lp):
        with open(lp, encoding="utf-8") as f:
            log = [json.loads(ln) for ln in f if ln.strip()]
    step = ck.get("step", ck.get("state", {}).get("step"))
    train_time = ck.get("train_time_s", ck.get("state", {}).get("train_time", 0.0))
    log = [r for r in log if r.get("step", 0) <= step]
    layout = CanvasLayout(data_info["canvas"]["length"],
                          next((s["length"] for s in data_info["canvas"]["segments"] if s["name"] == "record"), 0))
    if kept is not None:
        check_keepable(kept, args.keep_from, tok, layout, os.path.join(args.run, "vocab.json"))
    bid = args.id or cfg["name"]
    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(os.path.join(args.out, "manifest.json")):
        os.remove(os.path.join(args.out, "manifest.json"))
    round_weights_to_float16(model)  # the ONNX graph and denoiser.pt hold the same values
    export_onnx(model, os.path.join(args.out, "denoiser.onnx"))
    diff = check_onnx(model, os.path.join(args.out, "denoiser.onnx"))
    if diff is not None and diff > 1e-3:
        raise SystemExit(f"denoiser.onnx: onnxruntime logits differ from PyTorch by {diff}")
    shutil.copyfile(os.path.join(args.run, "vocab.json"), os.path.join(args.out, "vocab.json"))
    save_reference_weights(model, os.path.join(args.out, "denoiser.pt"))

    settings = M.MaskedSettings(steps=args.steps, block_length=args.block_length, temperature=args.temperature)
    ref = M.MaskedReference(model, tok, layout, mcfg.mask_id)
    metrics = {"onnxruntime_max_abs_diff": diff}
    if args.dev and args.dev_mrs and layout.record_len:
        groups = dev_mrs(args.dev, args.dev_mrs)
        rows = [held_canvas(ref, g["record"], None) for g in groups]
        ids = M.sample(ref, len(groups), settings, 0, np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]))
        metrics["dev_data_to_text"] = {**bleu_report([decode(ref, r)["text"] for r in ids], groups),
                                       "mrs": len(groups), "note": "PyTorch reference sampler, manifest defaults"}
    dc = cfg["data"]
    is_e2e = "e2e" in (dc.get("corpus_name") or dc["train"]).lower()
    sampler_defaults = {"steps": settings.steps, "block_length": settings.block_length, "confidence": settings.confidence,
                        "temperature": settings.temperature, "top_p": settings.top_p,
                        "temperature_unconditional": args.temperature_unconditional,
                        **({"record_temperature_unconditional": args.record_temperature_unconditional}
                           if args.record_temperature_unconditional >= 0 else {}),
                        # the engine holds a free record to the record schema (the reference sampler does not)
                        **({"record_schema_hold": True} if (data_info.get("record_schema") or {}).get("fields") else {})}
    manifest = {
        "format": FORMAT,
        "id": bid,
        "version": args.version,
        "kind": MASKED_KIND,
        "name": args.name or bid,
        "tokenizer": {"type": "surface-pieces/1", "vocab": "vocab.json", "size": len(tok)},
        "canvas": layout.to_json(),
        "denoiser": {"file": "denoiser.onnx", "inputs": {"ids": "int64[B,N]"}, "outputs": {"logits": "float32[B,N,V]"},
                     "opset": 17},
        "mask": {"id": mcfg.mask_id, "shifted_logits": False},
        "sampler_defaults": sampler_defaults,
        "record_schema": data_info.get("record_schema") or {"fields": {}},
        "files": [],
        "training": {
            "data": dc.get("corpus_name") or os.path.basename(dc["train"]),
            "license": dc.get("license") or ("CC BY-SA 4.0" if is_e2e else "unknown"),
            "steps": step,
            "wall_time_s": round(train_time, 1),
            "hardware": run_ck.get("hardware", "unknown"),
            "precision": run_ck.get("autocast", "fp32"),
            "parameters": model.num_parameters(),
            "exported_utc": dt.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "config": cfg,
        },
        "metrics": metrics,
        "reference": {"file": "denoiser.pt", "framework": "pytorch", "weights": "ema", "dtype": "float16", "model_config": mcfg.to_json()},
        "classifiers": [],
        "scorer": None,
    }
    if warm := warm_start_info(args.run, train_time):
        manifest["training"].update(warm)
    if layout.text_len:
        manifest["text_end"] = text_end.corpus_rule(tok, expand(dc["train"]), dc.get("limit"))
    carried: List[str] = []
    if kept is not None:
        carried = carry_measured(kept, args.keep_from, args.out, manifest)
    samples = card_samples(ref, sampler_defaults, args.dev, args.card_samples, 0)
    with open(os.path.join(args.out, "samples.json"), "w", encoding="utf-8") as f:
        json.dump(samples, f, ensure_ascii=False, indent=1)
    card = data_card(manifest, data_info, log, samples, is_e2e)
    if kept is not None:
        card += kept_card_sections(os.path.join(args.keep_from, "DATA_CARD.md"), card, kept)
    with open(os.path.join(args.out, "DATA_CARD.md"), "w", encoding="utf-8") as f:
        f.write(card)
    if "text_end" in manifest:
        set_card_section(args.out, text_end.CARD_HEADING, text_end.card_lines(manifest["text_end"], tok))
    write_manifest(args.out, manifest)
    m = add_files_and_rehash(args.out, ["denoiser.onnx", "vocab.json", "denoiser.pt", "DATA_CARD.md", "samples.json", *carried])
    total = sum(f["bytes"] for f in m["files"])
    print(f"bundle {args.out}: {len(m['files'])} files, {total / 1e6:.2f} MB; steps {step}; "
          f"metrics {json.dumps(metrics)}", flush=True)
    return 0


# What --keep-from carries: measured around the denoiser, valid for any weights over the same vocabulary and canvas
KEPT_FIELDS = ("classifiers", "lexicons", "scorer", "joint_guidance", "guidance_defaults", "sampler_defaults")
# Files the export writes itself, and the kept bundle's training curve (its own run's, not this one's)
OWN_FILES = {"denoiser.onnx", "vocab.json", "denoiser.pt", "DATA_CARD.md", "samples.json", "curve.svg"}


def check_keepable(kept: dict, where: str, tok: Tokenizer, layout: CanvasLayout, vocab_path: str) -> None:
    """Refuse, by name, a bundle whose measured parts would read other tokens or another canvas."""
    if kept.get("kind") != MASKED_KIND:
        raise SystemExit(f"--keep-from {where}: kind {kept.get('kind')!r}, not {MASKED_KIND!r}")
    with open(os.path.join(where, kept["tokenizer"]["vocab"]), encoding="utf-8") as f:
        theirs = json.load(f)
    with open(vocab_path, encoding="utf-8") as f:
        ours = json.load(f)
    if theirs != ours:
        raise SystemExit(f"--keep-from {where}: its {kept['tokenizer']['vocab']} differs from the run's {vocab_path} "
                         f"({len(theirs.get('tokens', []))} vs {len(tok)} tokens): "
                         "its classifiers and lexicons index other tokens")
    if kept.get("canvas") != layout.to_json():
        raise SystemExit(f"--keep-from {where}: canvas {json.dumps(kept.get('canvas'))} differs from the run's "
                         f"{json.dumps(layout.to_json())}")


def carry_measured(kept: dict, where: str, out: str, manifest: dict) -> List[str]:
    """Copy the kept bundle's measured fields into `manifest` and their files into `out`; the files' paths."""
    for k in KEPT_FIELDS:
        if k in kept:
            manifest[k] = kept[k]
    paths = [f["path"] for f in kept.get("files", []) if f["path"] not in OWN_FILES]
    for rel in paths:
        dst = os.path.join(out, rel)
        os.makedirs(os.path.dirname(dst) or out, exist_ok=True)
        shutil.copyfile(os.path.join(where, rel), dst)
    return paths


def kept_card_sections(path: str, card: str, kept: dict) -> str:
    """The kept bundle's data card sections this card does not have (classifiers, scorer, guidance...), each marked
    as measured on that bundle; its training curve is its own run's and stays behind."""
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    have = {ln.strip() for ln in card.splitlines() if ln.startswith("## ")}
    out: List[str] = []
    for block in ("\n" + text).split("\n## ")[1:]:
        head, _, body = block.partition("\n")
        if f"## {head}".strip() in have or head.startswith("Training curve"):
            continue
        out += ["", f"## {head}", "", f"Carried over from `{kept['id']}` {kept['version']} (`--keep-from`).",
                body.rstrip()]
    return "\n".join(out) + ("\n" if out else "")


def data_card(m: dict, data_info: dict, log: List[dict], samples: dict, is_e2e: bool) -> str:
    tr = m["training"]
    tc = tr["config"]["train"]
    lines = [f"# Data card: {m['name']} (`{m['id']}` {m['version']})", "",
             "## What it is", "",
             f"A masked (absorbing-state) diffusion language model in the MDLM / LLaDA way, {tr['parameters']:,} "
             f"parameters: a bidirectional transformer maps a canvas of {m['canvas']['length']} token ids, some of "
             f"them the mask id {m['mask']['id']}, to logits over the {m['tokenizer']['size']}-token vocabulary. "
             "Sampling starts from an all-mask canvas (or pins a given record or text) and commits the most "
             "confident proposals block by block. One canvas holds a JSON record, a separator and the text.", "",
             "## Training data", "",
             f"- Corpus: `{tr['data']}` ({tr['license']}).",
             f"- Examples: {data_info['examples']} read, {data_info['kept']} used, **{data_info['dropped']} dropped** "
             "because the record or the text did not fit its canvas segment.",
             "- Split: trained on the training split only; the dev split gave the dev BLEU and the sample records "
             "below; the test split was not used.", "",
             "## Training budget", "",
             f"- Objective: MDLM (t ~ U(1e-3, 1), each generated token masked with probability t, cross-entropy on "
             "masked tokens weighted 1/t); half the examples mask only the text, a quarter only the record.",
             f"- Steps: {tr['steps']} at batch {tc['batch_size']} ({tr['steps'] * tc['batch_size'] / max(1, data_info['kept']):.2f} epochs), "
             f"{tr['wall_time_s'] / 60:.1f} min of training.",
             *warm_start_lines(tr),
             f"- Hardware: {tr['hardware']}; precision {tr['precision']} autocast.",
             f"- Optimizer: AdamW, lr {tc['lr']}, {tc['warmup']} warmup steps then linear decay to the stop time, "
             f"weight decay {tc['weight_decay']}, EMA {tc['ema_decay']} (exported weights are the EMA weights).", ""]
    summ = loss_summary(log)
    if summ:
        lines += ["## Loss curve (training, averaged over each logging window)", "",
                  "| step | loss | masked-token accuracy | lr |", "| --- | --- | --- | --- |"]
        lines += [f"| {r['step']} | {r['loss']:.4f} | {r.get('masked_acc', 0):.3f} | {r['lr']:.2e} |" for r in summ]
        lines.append("")
    lines += ["## Metrics", "", "```json", json.dumps(m["metrics"], indent=1), "```", "",
              "## Samples", "", *samples_intro(samples)]
    lines += sample_tables_and_license(samples, tr, is_e2e)
    return "\n".join(lines)


def samples_intro(samples: dict) -> List[str]:
    return [f"From the PyTorch reference sampler (`python3 -m training.dlm_train.masked_sample`), data-to-text "
            f"settings `{json.dumps(samples['settings'])}`, unconditional settings "
            f"`{json.dumps(samples.get('unconditional_settings', samples['settings']))}`, seed {samples['seed']} "
            f"(data-to-text: seed {samples['seed'] + 1}); not cherry-picked.", ""]


def redraw_card_samples(bundle_dir: str, dev_path: Optional[str], n: int) -> dict:
    """Draw a bundle's card samples again under its manifest's sampler_defaults (after they changed): samples.json
    and the card's Samples section, rehashed."""
    man = read_manifest(bundle_dir)
    d = man.get("sampler_defaults") or {}
    ref = M.load_masked_bundle(bundle_dir)
    samples = card_samples(ref, d, dev_path, n, 0)
    with open(os.path.join(bundle_dir, "samples.json"), "w", encoding="utf-8") as f:
        json.dump(samples, f, ensure_ascii=False, indent=1)
    set_card_section(bundle_dir, "## Samples", samples_intro(samples) + sample_tables(samples))
    add_files_and_rehash(bundle_dir, ["samples.json", "DATA_CARD.md"])
    return samples


if __name__ == "__main__":
    sys.exit(main())
