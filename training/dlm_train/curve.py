"""Training curves: dev BLEU of each EMA snapshot against cumulative training hours, and an SVG plot of them.

    python3 -m training.dlm_train.curve eval --run training/runs/e2e-masked [--mrs 100] [-- extra dev_eval args]
    python3 -m training.dlm_train.curve plot --out models/e2e-masked/curve.svg training/runs/e2e-masked ...

`eval` scores every snapshot under <run>/snapshots/ not yet in <run>/curve.jsonl (one dev_eval line each);
`plot` draws BLEU (y) against training hours (x), one line per run, as a small standalone SVG (no plotting library).
A warm-started run's hours include its source's (<run>/warm_start.json), so its line continues the source's.
"""
from __future__ import annotations

import argparse
import glob
import io
import json
import os
import sys
from contextlib import redirect_stdout
from typing import List, Optional

from . import dev_eval
from .bundle import prior_training_s

COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df"]


def eval_snapshots(run: str, extra: List[str]) -> List[dict]:
    path = os.path.join(run, "curve.jsonl")
    done = set()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            done = {json.loads(ln)["snapshot"] for ln in f if ln.strip()}
    rows = []
    for snap in sorted(glob.glob(os.path.join(run, "snapshots", "*.pt"))):
        if os.path.basename(snap) in done:
            continue
        buf = io.StringIO()
        with redirect_stdout(buf):
            dev_eval.main(["--run", run, "--snapshot", snap, "--show", "0", *extra])
        row = json.loads(buf.getvalue().strip().splitlines()[0])
        # a warm-started run continues its source's curve: hours count the source's training too
        prior = prior_training_s(run)
        if prior:
            row["prior_train_time_s"] = prior
        row["train_hours"] = round((row["train_time_s"] + prior) / 3600.0, 3)
        rows.append(row)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    return rows


def load_curve(run: str) -> List[dict]:
    with open(os.path.join(run, "curve.jsonl"), encoding="utf-8") as f:
        return sorted((json.loads(ln) for ln in f if ln.strip()), key=lambda r: r["train_time_s"])


def svg_plot(series: List[tuple], title: str, w: int = 560, h: int = 320) -> str:
    """series: (label, [(x, y), ...]). Axes from 0; x in hours, y in BLEU."""
    pad_l, pad_r, pad_t, pad_b = 48, 150, 30, 40
    xs = [x for _, pts in series for x, _ in pts] or [1.0]
    ys = [y for _, pts in series for _, y in pts] or [1.0]
    xmax = max(xs) * 1.05 or 1.0
    ymax = max(10.0, (int(max(ys) / 10) + 1) * 10)
    px = lambda x: pad_l + (w - pad_l - pad_r) * x / xmax  # noqa: E731
    py = lambda y: h - pad_b - (h - pad_t - pad_b) * y / ymax  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{pad_l}" y="18" font-size="13">{title}</text>',
           f'<line x1="{pad_l}" y1="{py(0)}" x2="{px(xmax)}" y2="{py(0)}" stroke="#444"/>',
           f'<line x1="{pad_l}" y1="{py(0)}" x2="{pad_l}" y2="{py(ymax)}" stroke="#444"/>']
    for k in range(0, int(ymax) + 1, 10):
        out.append(f'<line x1="{pad_l - 3}" y1="{py(k):.1f}" x2="{px(xmax):.1f}" y2="{py(k):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{pad_l - 6}" y="{py(k) + 4:.1f}" text-anchor="end">{k}</text>')
    step = 0.25 if xmax <= 2 else 0.5 if xmax <= 5 else 1.0
    x = 0.0
    while x <= xmax:
        out.append(f'<text x="{px(x):.1f}" y="{h - pad_b + 15}" text-anchor="middle">{x:g}</text>')
        x += step
    out.append(f'<text x="{(pad_l + px(xmax)) / 2:.1f}" y="{h - 6}" text-anchor="middle">training hours (CPU)</text>')
    out.append(f'<text x="12" y="{(pad_t + h - pad_b) / 2:.1f}" transform="rotate(-90 12 {(pad_t + h - pad_b) / 2:.1f})" '
               f'text-anchor="middle">dev BLEU</text>')
    for i, (label, pts) in enumerate(series):
        c = COLORS[i % len(COLORS)]
        pts = sorted(pts)
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="'
                   + " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in pts) + '"/>')
        out += [f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="3" fill="{c}"/>' for a, b in pts]
        ly = pad_t + 16 * i + 10
        out.append(f'<rect x="{w - pad_r + 12}" y="{ly - 8}" width="10" height="10" fill="{c}"/>')
        out.append(f'<text x="{w - pad_r + 26}" y="{ly + 1}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def add_to_bundle(bundle: str, runs: List[str], title: str = "E2E dev data-to-text BLEU against training time") -> None:
    """Write curve.svg into a bundle, append the curve table to its DATA_CARD.md, and rehash the file list."""
    from .bundle import add_files_and_rehash
    series, rows_md = [], []
    for run in runs:
        rows = load_curve(run)
        label = f"{os.path.basename(run.rstrip('/'))} ({rows[0]['family']})" if rows else run
        series.append((label, [(r["train_hours"], r["bleu"]) for r in rows]))
        rows_md += [f"| {label} | {r['snapshot']} | {r['step']} | {r['train_hours']:.2f} | {r['bleu']:.1f} | "
                    f"{r['bp']:.2f} | {r['mrs']} | {r['steps']} / {r['block_length']} |" for r in rows]
    with open(os.path.join(bundle, "curve.svg"), "w", encoding="utf-8") as f:
        f.write(svg_plot(series, title))
    card = os.path.join(bundle, "DATA_CARD.md")
    with open(card, encoding="utf-8") as f:
        text = f.read()
    section = ["## Training curve (dev BLEU of the EMA snapshots)", "", "![dev BLEU against training hours](curve.svg)", "",
               "The first distinct dev MRs (column MRs), one sample each, record held, greedy; made by "
               "`python3 -m training.dlm_train.curve`. The continuous run is recipe B, for comparison at equal CPU time.",
               "", "| run | snapshot | step | hours | BLEU | brevity penalty | MRs | sampling steps / block |",
               "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |", *rows_md, ""]
    marker = "## License and attribution"
    text = text.replace(marker, "\n".join(section) + "\n" + marker) if marker in text else text + "\n".join(section)
    with open(card, "w", encoding="utf-8") as f:
        f.write(text)
    add_files_and_rehash(bundle, ["curve.svg"])  # re-hashes every listed file, DATA_CARD.md included


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval")
    e.add_argument("--run", required=True)
    e.add_argument("extra", nargs="*", help="arguments passed on to dev_eval (after --)")
    p = sub.add_parser("plot")
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--title", default="E2E dev data-to-text BLEU against training time")
    b = sub.add_parser("bundle", help="write curve.svg and the curve table into a bundle's data card")
    b.add_argument("--bundle", required=True)
    b.add_argument("runs", nargs="+")
    a = ap.parse_args(argv)
    if a.cmd == "bundle":
        add_to_bundle(a.bundle, a.runs)
        print(os.path.join(a.bundle, "curve.svg"))
        return 0
    if a.cmd == "eval":
        eval_snapshots(a.run, a.extra)
    else:
        series = []
        for run in a.runs:
            rows = load_curve(run)
            label = f"{os.path.basename(run.rstrip('/'))} ({rows[0]['family']})" if rows else run
            series.append((label, [(r["train_hours"], r["bleu"]) for r in rows]))
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(svg_plot(series, a.title))
        print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
