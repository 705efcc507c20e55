"""Int8 variant of a bundle's denoiser: the weight matrices of its large MatMuls stored as int8 with one scale per
output column, activations quantized to uint8.

On CPUs with AVX-512 VNNI / AVX2 this roughly halves the denoiser's forward time (a whole sampling step, which
also rounds and guides, gets 1.3-1.5x faster); the studio uses it on the cpu
provider when the bundle has one (precision `auto`), and the fp32 graph everywhere else.

Activations (default `static`): one fixed range per MatMul input, calibrated by running the fp32 graph on the inputs
the PyTorch reference sampler feeds the denoiser along real trajectories (unconditional and data-to-text). A fixed
range keeps every sample independent of the others in its batch; `dynamic` (a range per call, onnxruntime's
DynamicQuantizeMatMul) needs no calibration but couples the samples of a call, so the engine then runs it one
sample per call.

Why our own pass and not onnxruntime.quantization: the pipeline runs on Debian's python3-onnx/python3-torch, and the
onnxruntime wheel pulls a protobuf that shadows the one Debian's onnx was built against. The transform is small:

  static:  MatMul(A, W) [+ Add(bias)] -> MatMulIntegerToFloat(QuantizeLinear(A, s_a, z_a), int8(W / s_w), s_a, s_w,
                                                              z_a, 0 [, bias])
  dynamic: MatMul(A, W) [+ Add(bias)] -> DynamicQuantizeMatMul(A, int8(W / s_w), s_w, 0 [, bias])

for every MatMul whose second input is a 2-D float initializer with both sides >= --min-dim (the tiny input and
output projections stay fp32: they are cheap, and the output one writes x0 directly).

    python -m training.dlm_train.quantize --bundle models/e2e-default
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Dict, List, Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .bundle import add_files_and_rehash, read_manifest, set_card_section

INT8_FILE = "denoiser.int8.onnx"
MS_DOMAIN = "com.microsoft"


def quantize_weight(w: np.ndarray):
    """Symmetric int8 per output column: w [K, N] ~ q [K, N] * scale [N]."""
    amax = np.abs(w).max(axis=0)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def quantizable_weight(n: onnx.NodeProto, inits: Dict[str, onnx.TensorProto], min_dim: int) -> Optional[onnx.TensorProto]:
    """The weight initializer of a MatMul that gets int8 weights (2-D float, both sides >= min_dim), else None."""
    w = inits.get(n.input[1]) if n.op_type == "MatMul" and len(n.input) == 2 else None
    if w is None or len(w.dims) != 2 or w.data_type != onnx.TensorProto.FLOAT or min(w.dims) < min_dim:
        return None
    return w


def output_heads(model: onnx.ModelProto) -> set:
    """Names of the MatMul nodes whose product reaches a graph output through Add, Cast or Identity only: the
    projection that writes the logits (or x0)."""
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    heads = set()
    for out in g.output:
        n = producer.get(out.name)
        while n is not None and n.op_type in ("Add", "Cast", "Identity"):
            n = next((producer[i] for i in n.input if i in producer), None)
        if n is not None and n.op_type == "MatMul":
            heads.add(n.name)
    return heads


def quantizable(model: onnx.ModelProto, min_dim: int = 64, keep_head: bool = False) -> List[str]:
    """Names of the activation inputs (A) of the MatMuls quantize_model rewrites."""
    inits = {i.name: i for i in model.graph.initializer}
    kept = output_heads(model) if keep_head else set()
    return [n.input[0] for n in model.graph.node if n.name not in kept and quantizable_weight(n, inits, min_dim) is not None]


def activation_qparams(lo: float, hi: float):
    """Asymmetric uint8 over [min(lo, 0), max(hi, 0)]: (scale, zero point)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = int(np.clip(np.rint(-lo / scale), 0, 255))
    return np.float32(scale), np.uint8(zp)


def quantize_model(model: onnx.ModelProto, min_dim: int = 64,
                   ranges: Optional[Dict[str, tuple]] = None, keep_head: bool = False) -> Dict[str, int]:
    """Rewrite `model` in place; returns counts of quantized and kept MatMuls. With `ranges` (activation name ->
    (min, max)), activations get those fixed ranges (static); without, a range per call (dynamic). keep_head: the
    output projection (output_heads) stays fp32."""
    g = model.graph
    kept = output_heads(model) if keep_head else set()
    inits = {i.name: i for i in g.initializer}
    consumers: Dict[str, List[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in g.output}
    new_nodes: List[onnx.NodeProto] = []
    drop = set()
    counts = {"quantized": 0, "kept": 0}
    for n in g.node:
        if id(n) in drop:
            continue
        w_init = None if n.name in kept else quantizable_weight(n, inits, min_dim)
        if w_init is None:
            if n.op_type == "MatMul":
                counts["kept"] += 1
            new_nodes.append(n)
            continue
        w = numpy_helper.to_array(w_init)
        q, scale = quantize_weight(w)
        base = n.input[1]
        names = [f"{base}_int8", f"{base}_scale", f"{base}_zero"]
        g.initializer.extend([numpy_helper.from_array(q, names[0]), numpy_helper.from_array(scale, names[1]),
                              numpy_helper.from_array(np.zeros(q.shape[1], np.int8), names[2])])
        inputs = [n.input[0], *names]
        out = n.output[0]
        # fold a following bias Add (1-D initializer of N floats) into the op's bias input
        users = consumers.get(out, [])
        if len(users) == 1 and users[0].op_type == "Add" and out not in graph_outputs:
            add = users[0]
            other = add.input[1] if add.input[0] == out else add.input[0]
            b = inits.get(other)
            if b is not None and list(b.dims) == [q.shape[1]] and b.data_type == onnx.TensorProto.FLOAT:
                inputs.append(other)
                out = add.output[0]
                drop.add(id(add))
        name = f"{n.name or base}_int8"
        if ranges is None:
            new_nodes.append(helper.make_node("DynamicQuantizeMatMul", inputs, [out], name=name, domain=MS_DOMAIN))
        else:
            a = n.input[0]
            if a not in ranges:
                raise ValueError(f"no calibrated range for activation {a!r}")
            a_scale, a_zp = activation_qparams(*ranges[a])
            qa = [f"{name}_a_scale", f"{name}_a_zero", f"{name}_a_q"]
            g.initializer.extend([numpy_helper.from_array(np.array(a_scale, np.float32), qa[0]),
                                  numpy_helper.from_array(np.array(a_zp, np.uint8), qa[1])])
            new_nodes.append(helper.make_node("QuantizeLinear", [a, qa[0], qa[1]], [qa[2]], name=f"{name}_quantize"))
            # MatMulIntegerToFloat(A, B, a_scale, b_scale, a_zero_point, b_zero_point[, bias])
            new_nodes.append(helper.make_node("MatMulIntegerToFloat",
                                              [qa[2], names[0], qa[0], names[1], qa[1], names[2], *inputs[4:]],
                                              [out], name=name, domain=MS_DOMAIN))
        counts["quantized"] += 1
    del g.node[:]
    g.node.extend(new_nodes)
    # float weights no longer read by any node
    still = {i for node in g.node for i in node.input}
    keep = [i for i in g.initializer if i.name in still]
    del g.initializer[:]
    g.initializer.extend(keep)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return counts


def sample_one_record(man: dict, ref, held_canvas, sample_held, seed: int) -> None:
    """Data-to-text trajectories for calibration: a record drawn from the bundle's record schema, held with
    `held_canvas(ref, record=...)` and sampled by `sample_held(given, held)`; nothing when the bundle has no record
    segment or schema, or the record does not fit its segment."""
    fields = (man.get("record_schema") or {}).get("fields") or {}
    if not (ref.layout.record_len and fields):
        return
    rng = np.random.default_rng(seed)
    record = {f: vals[int(rng.integers(len(vals)))] for f, vals in fields.items() if vals}
    try:
        given, held = held_canvas(ref, record=record)
        sample_held(given, held)
    except ValueError:
        pass  # the record does not fit this bundle's record segment: unconditional trajectories only


def evenly(arrays: Dict[str, np.ndarray], rows: int) -> Dict[str, np.ndarray]:
    """`rows` of each array's first axis (all the same length), drawn evenly."""
    n = len(next(iter(arrays.values())))
    pick = np.linspace(0, n - 1, num=min(rows, n)).round().astype(int)
    return {k: v[pick] for k, v in arrays.items()}


def calibration_inputs(bundle_dir: str, samples: int = 8, steps: int = 50, seed: int = 0, rows: int = 256):
    """The denoiser inputs the reference sampler feeds it (x_t, t, and x_self_cond / clean for a recipe-B denoiser):
    unconditional and data-to-text trajectories of the bundle's PyTorch weights (denoiser.pt); `rows` of them, drawn
    evenly. Returns {input name: array}."""
    import torch

    from . import sample as S

    ref = S.load_bundle(bundle_dir, verify=False)
    real = ref.model
    seen: Dict[str, list] = {"x_t": [], "t": []}
    if real.cfg.self_condition:
        seen["x_self_cond"] = []
    if real.cfg.clean_flags:
        seen["clean"] = []

    class Recorder(torch.nn.Module):
        cfg = real.cfg  # the sampler reads the model's config (recipe-B inputs)

        def forward(self, x, t, x_sc=None, clean=None):
            for name, v in (("x_t", x), ("t", t), ("x_self_cond", x_sc), ("clean", clean)):
                if name in seen:
                    seen[name].append(v.detach().clone())
            return real(x, t, x_sc, clean) if len(seen) > 2 else real(x, t)

    ref.model = Recorder()
    try:
        S.sample(ref, samples, steps=steps, seed=seed)
        sample_one_record(read_manifest(bundle_dir), ref, S.held_canvas,
                          lambda given, held: S.sample(ref, samples, steps=steps, seed=seed + 1, given=given, held=held),
                          seed)
    finally:
        ref.model = real
    return evenly({k: torch.cat(v).numpy().astype(np.float32) for k, v in seen.items()}, rows)


def masked_calibration_inputs(bundle_dir: str, samples: int = 8, seed: int = 0, rows: int = 256) -> Dict[str, np.ndarray]:
    """A masked-diffusion bundle's denoiser inputs (ids) along its reference sampler's trajectories at the bundle's
    sampler_defaults: unconditional (the record written too) and data-to-text (a record from record_schema held);
    `rows` of them, drawn evenly. Returns {"ids": int64 [rows, N]}."""
    import torch

    from . import masked_sample as MS

    ref = MS.load_masked_bundle(bundle_dir)
    real = ref.model
    seen: List[torch.Tensor] = []

    def recorder(ids: torch.Tensor) -> torch.Tensor:
        seen.append(ids.detach().clone())
        return real(ids)

    man = read_manifest(bundle_dir)
    defaults = man.get("sampler_defaults") or {}
    ref.model = recorder
    try:
        MS.sample(ref, samples, MS.settings_from_defaults(defaults, pinned=False), seed=seed)
        sample_one_record(man, ref, MS.held_canvas,
                          lambda given, held: MS.sample(ref, samples, MS.settings_from_defaults(defaults, pinned=True),
                                                        seed=seed + 1, given=given, held=held),
                          seed)
    finally:
        ref.model = real
    return evenly({"ids": torch.cat(seen).numpy().astype(np.int64)}, rows)


def calibrate(model_path: str, names: List[str], feeds: Dict[str, np.ndarray], chunk: int = 64) -> Dict[str, tuple]:
    """(min, max) of each named activation when the fp32 graph runs on the calibration feeds (onnxruntime-node)."""
    from training.guidance.ort import run_onnx

    m = onnx.load(model_path)
    # expose each activation as an output with a file-safe name (the node runner writes one file per output)
    safe = {n: f"calib_{i}" for i, n in enumerate(names)}
    for n, o in safe.items():
        m.graph.node.append(helper.make_node("Identity", [n], [o], name=f"{o}_identity"))
        m.graph.output.append(helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None))
    ranges: Dict[str, tuple] = {}
    with tempfile.TemporaryDirectory() as d:
        probe = os.path.join(d, "calibrate.onnx")
        onnx.save(m, probe)
        for i in range(0, len(next(iter(feeds.values()))), chunk):
            out = run_onnx(probe, {k: v[i:i + chunk] for k, v in feeds.items()})
            for n in names:
                lo, hi = float(out[safe[n]].min()), float(out[safe[n]].max())
                old = ranges.get(n)
                ranges[n] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    return ranges


def add_int8_denoiser(bundle_dir: str, min_dim: int = 64, activations: str = "static", keep_head: bool = False,
                      guided_runs: Optional[str] = None) -> dict:
    """Write denoiser.int8.onnx next to the bundle's fp32 denoiser and record it in the manifest. guided_runs (masked
    bundles): "fp32" keeps classifier-guided runs on the fp32 graph under precision auto."""
    m = read_manifest(bundle_dir)
    masked = m.get("kind") == "masked-diffusion"
    if guided_runs not in (None, "int8", "fp32"):
        raise ValueError(f"guided_runs must be 'int8' or 'fp32', got {guided_runs!r}")
    if guided_runs is not None and not masked:
        raise ValueError(f"{bundle_dir}: --guided-runs is a masked-diffusion bundle's setting (this one is {m.get('kind')!r})")
    src = os.path.join(bundle_dir, m["denoiser"]["file"])
    model = onnx.load(src)
    names = quantizable(model, min_dim, keep_head)
    if not names:
        raise ValueError(f"{src}: no MatMul with a 2-D weight of both sides >= {min_dim}; nothing to quantize")
    ranges = None
    calib = None
    if activations == "static":
        weights = (m.get("reference") or {}).get("file", "denoiser.pt") if masked else "denoiser.pt"
        if not os.path.exists(os.path.join(bundle_dir, weights)):
            raise FileNotFoundError(f"{bundle_dir}/{weights}: static calibration runs the PyTorch reference sampler "
                                    "(or use --activations dynamic)")
        feeds = masked_calibration_inputs(bundle_dir) if masked else calibration_inputs(bundle_dir)
        ranges = calibrate(src, sorted(set(names)), feeds)
        calib = {"inputs": int(len(next(iter(feeds.values())))),
                 "source": "reference-sampler trajectories (unconditional and data-to-text)"}
    elif activations != "dynamic":
        raise ValueError(f"activations must be 'static' or 'dynamic', got {activations!r}")
    counts = quantize_model(model, min_dim, ranges, keep_head)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(bundle_dir, INT8_FILE))
    set_card_section(bundle_dir, "## Int8 denoiser", [
        f"`{INT8_FILE}` is `{m['denoiser']['file']}` with the weight matrices of {counts['quantized']} MatMuls stored as "
        f"int8 (one scale per output column; the other {counts['kept']} MatMuls, products of two activations or small "
        "projections, stay fp32) and "
        + ("activations quantized to uint8 with fixed ranges calibrated on "
           f"{calib['inputs']} denoiser inputs of reference-sampler trajectories (unconditional and data-to-text)."
           if calib else "activations quantized to uint8 with a range per call.")
        + " The studio runs it on the cpu provider (sampler precision `auto`"
        + ("; classifier-guided runs stay on the fp32 graph there, `guided_runs: fp32`" if guided_runs == "fp32" else "")
        + "); choose `fp32` for the exact weights. "
        "Made by `python -m training.dlm_train.quantize`.",
    ])
    den = dict(m["denoiser"])
    den["int8"] = {"file": INT8_FILE, "weights": "int8, one scale per output column",
                   "activations": activations, "matmuls_quantized": counts["quantized"],
                   "matmuls_fp32": counts["kept"], **({"output_head": "fp32"} if keep_head else {}),
                   **({"guided_runs": guided_runs} if guided_runs else {}),
                   **({"calibration": calib} if calib else {})}
    return add_files_and_rehash(bundle_dir, [INT8_FILE, "DATA_CARD.md"], {"denoiser": den})


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", required=True, help="bundle directory with manifest.json and the fp32 denoiser")
    ap.add_argument("--min-dim", type=int, default=64, help="quantize MatMuls whose weight has both sides >= this")
    ap.add_argument("--activations", choices=["static", "dynamic"], default="static",
                    help="static: calibrated fixed ranges (samples stay batch-independent); dynamic: a range per call")
    ap.add_argument("--keep-head", action="store_true",
                    help="keep the output projection (the MatMul that writes the logits or x0) in fp32")
    ap.add_argument("--guided-runs", choices=["int8", "fp32"],
                    help="masked bundles: the graph classifier-guided runs take under precision auto (default int8)")
    args = ap.parse_args(argv)
    m = add_int8_denoiser(args.bundle, args.min_dim, args.activations, args.keep_head, args.guided_runs)
    q = m["denoiser"]["int8"]
    size = next(f["bytes"] for f in m["files"] if f["path"] == INT8_FILE)
    print(f"{args.bundle}: {INT8_FILE} ({size / 1e6:.2f} MB), {q['matmuls_quantized']} MatMuls int8 "
          f"({q['activations']} activations), {q['matmuls_fp32']} kept fp32", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
