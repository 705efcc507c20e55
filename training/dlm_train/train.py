"""Train a Diffusion-LM denoiser from a JSON config.

    python3 -m training.dlm_train.train --config training/configs/e2e-default.json
    torchrun --nproc_per_node=2 -m training.dlm_train.train --config ...   (DDP; gloo on CPU, nccl on CUDA)

Re-running the same command resumes from <run_dir>/ckpt.pt. The run stops cleanly (checkpoint written) at
train.max_steps, at train.stop_at (ISO UTC time) or after train.time_budget_s seconds of training.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import platform
import sys
import time
from typing import Optional

import numpy as np
import torch

from .bundle import MANIFEST, WARM_START, describe_warm_start
from .data import CanvasLayout, encode_split, read_corpus, record_schema, vocab_texts
from .masked import MaskedConfig, MaskedDenoiser, masked_losses
from .model import Denoiser, ModelConfig, ce_losses, diffusion_losses, load_grown
from .schedule import training_schedule
from .paths import expand
from .tokenizer import Tokenizer, build_vocab

FAMILIES = ("continuous", "masked")

DEFAULTS = {
    "name": "run",
    "family": "continuous",
    "run_dir": None,
    "data": {"train": "${DLM_SHARED_DATA}/e2e/trainset.csv", "limit": None, "min_count": 3,
             "canvas_length": 96, "record_len": 44, "corpus_name": None, "license": None},
    "model": {"d": 16, "hidden": 128, "layers": 4, "heads": 4, "mlp_ratio": 4, "dropout": 0.1, "time_dim": 128,
              "objective": "mse", "self_condition": False, "clean_flags": False},
    "schedule": {"T": 2000, "s": 1e-4},
    "train": {"batch_size": 64, "lr": 1e-3, "warmup": 200, "max_steps": 4000, "weight_decay": 0.0,
              "grad_clip": 1.0, "ema_decay": 0.997, "ckpt_every": 200, "log_every": 10, "seed": 0,
              "threads": None, "device": "auto", "stop_at": None, "time_budget_s": None,
              "precision": "auto", "init_from": None, "snapshot_minutes": [], "p_tail_clean": 0.0,
              "freeze_embeddings": False, "p_substitute": 0.0, "visible_weight": 0.0},
}


def merge(base: dict, over: dict, where: str = "config") -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if k not in base:
            raise ValueError(f"{where}: unknown key {k!r} (known: {sorted(base)})")
        out[k] = merge(base[k], v, f"{where}.{k}") if isinstance(base[k], dict) else v
    return out


def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        try:
            cfg = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON: {e}") from None
    cfg = merge(DEFAULTS, cfg, path)
    cfg["data"]["train"] = expand(cfg["data"]["train"])
    return cfg


def parse_utc(s: str) -> float:
    d = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d.timestamp()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_string(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)} (CUDA, torch {torch.__version__})"
    return f"{world} x CPU process, {torch.get_num_threads()} thread(s) each, {cpu_name()} ({os.cpu_count()} cores), " \
           f"torch {torch.__version__}"


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        # frozen parameters are copied, so they stay bit-identical to the source (not averaged with themselves)
        self.frozen = {k for k, p in model.named_parameters() if not p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point and k not in self.frozen:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.shadow[k].copy_(v)


def lr_at(tc: dict, step: int, progress: float) -> float:
    if step < tc["warmup"]:
        return tc["lr"] * (step + 1) / tc["warmup"]
    return tc["lr"] * max(0.0, 1.0 - progress)


def prepare_data(cfg: dict, run_dir: str, is_main: bool):
    dc = cfg["data"]
    examples = read_corpus(dc["train"], dc["limit"])
    has_records = all(e.record is not None for e in examples)
    layout = CanvasLayout(dc["canvas_length"], dc["record_len"] if has_records else 0)
    vocab_path = os.path.join(run_dir, "vocab.json")
    # a warm start's weights index the vocabulary they were trained with (the vocab.json beside them, as in a bundle):
    # one built from another corpus would give their rows to other tokens
    init_from = cfg["train"].get("init_from")
    source_dir = os.path.dirname(expand(init_from)) if init_from else None
    source_vocab = os.path.join(source_dir, "vocab.json") if source_dir else None
    if os.path.exists(vocab_path):
        tok = Tokenizer.load(vocab_path)
    elif source_vocab and os.path.exists(source_vocab):
        tok = Tokenizer.load(source_vocab)
    else:
        tok = build_vocab(vocab_texts(examples), dc["min_count"])
    split = encode_split(tok, layout, examples)
    if len(split.ids) == 0:
        raise ValueError(f"{dc['train']}: no example fits the canvas ({layout.to_json()})")
    if is_main and not os.path.exists(vocab_path):
        tok.save(vocab_path)
    if is_main:
        # what this process reads, written at every start (a run dir's data.json from another corpus misstated the
        # counts); a warm start keeps the values its source bundle knows, which a slice of the corpus may lack
        fields = record_schema(examples) if has_records else None
        if fields is not None and source_dir and os.path.exists(os.path.join(source_dir, MANIFEST)):
            with open(os.path.join(source_dir, MANIFEST), encoding="utf-8") as f:
                known = (json.load(f).get("record_schema") or {}).get("fields") or {}
            fields = {k: sorted(set(fields.get(k, [])) | set(known.get(k, []))) for k in dict.fromkeys([*fields, *known])}
        with open(os.path.join(run_dir, "data.json"), "w", encoding="utf-8") as f:
            json.dump({"train": dc["train"], "examples": split.total, "kept": len(split.ids), "dropped": split.dropped,
                       "canvas": layout.to_json(), "vocab_size": len(tok),
                       "record_schema": {"fields": fields} if fields is not None else None},
                      f, ensure_ascii=False, indent=1)
    return tok, layout, split


def atomic_save(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--run-dir", help="default: training/runs/<name>")
    ap.add_argument("--max-steps", type=int)
    ap.add_argument("--stop-at", help="ISO time (UTC if no zone) at which to checkpoint and stop")
    ap.add_argument("--time-budget-s", type=float)
    ap.add_argument("--device", help="auto | cpu | cuda")
    args = ap.parse_args(argv)

    cfg = load_config(args.config)
    tc = cfg["train"]
    for k, v in (("max_steps", args.max_steps), ("stop_at", args.stop_at), ("time_budget_s", args.time_budget_s),
                 ("device", args.device)):
        if v is not None:
            tc[k] = v
    run_dir = args.run_dir or cfg["run_dir"] or os.path.join("training", "runs", cfg["name"])

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want = tc["device"]
    use_cuda = torch.cuda.is_available() if want == "auto" else want == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise SystemExit("train.device is 'cuda' but CUDA is not available")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if tc["threads"]:
        torch.set_num_threads(int(tc["threads"]))
    ddp = world > 1
    if ddp:
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    is_main = rank == 0
    if is_main:
        os.makedirs(run_dir, exist_ok=True)
    if ddp:
        torch.distributed.barrier()

    tok, layout, split = prepare_data(cfg, run_dir, is_main)
    if ddp:
        torch.distributed.barrier()
        tok = Tokenizer.load(os.path.join(run_dir, "vocab.json"))  # every rank uses rank 0's file
        split = encode_split(tok, layout, read_corpus(cfg["data"]["train"], cfg["data"]["limit"]))
    data = torch.from_numpy(split.ids)
    n = len(data)

    family = cfg["family"]
    if family not in FAMILIES:
        raise ValueError(f"config.family: unknown family {family!r} (known: {list(FAMILIES)})")
    torch.manual_seed(tc["seed"])
    if family == "masked":
        mkeys = {k: v for k, v in cfg["model"].items()
                 if k not in ("d", "time_dim", "objective", "self_condition", "clean_flags")}
        mcfg = MaskedConfig(vocab_size=len(tok), length=layout.length, **mkeys)
        model = MaskedDenoiser(mcfg).to(device)
    else:
        mcfg = ModelConfig(vocab_size=len(tok), length=layout.length, **cfg["model"])
        model = Denoiser(mcfg).to(device)
    if tc["init_from"] and not os.path.exists(os.path.join(run_dir, "ckpt.pt")):
        src = expand(tc["init_from"])
        weights = {k: v.float() for k, v in torch.load(src, map_location=device, weights_only=True).items()}
        added = load_grown(model, weights)  # a deeper config than the source grows by identity layers
        if is_main:
            with open(os.path.join(run_dir, WARM_START), "w", encoding="utf-8") as f:
                # "from" as the config names it: a committed manifest should not carry this machine's paths
                json.dump({**describe_warm_start(src), "from": tc["init_from"], **({"layers_added": added} if added else {})}, f)
            print(f"warm start from {src}" + (f", grown by {added} identity layer{'s' if added > 1 else ''}" if added else ""), flush=True)
    if tc["freeze_embeddings"] and family == "masked":
        raise ValueError("train.freeze_embeddings: applies to the continuous family (its diffusion runs in the "
                         "embedding space); a masked model has no such table to keep")
    if tc["freeze_embeddings"]:
        # the embedding table stays the source's: the guidance classifiers read x_t in its space, so a warm start
        # that keeps it keeps them valid (and the int8 rounding graph, the lexicons, the text length rule)
        model.emb.weight.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=tc["lr"],
                            weight_decay=tc["weight_decay"])
    ema = EMA(model, tc["ema_decay"])
    abar = torch.tensor(training_schedule(cfg["schedule"]["T"], cfg["schedule"]["s"]), dtype=torch.float32,
                        device=device)

    ckpt_path = os.path.join(run_dir, "ckpt.pt")
    state = {"step": 0, "epoch": 0, "pos": 0, "train_time": 0.0}
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)  # our own checkpoint
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        ema.shadow = {k: v.to(device) for k, v in ck["ema"].items()}
        state = ck["state"]
        torch.set_rng_state(ck["rng_cpu"])
        if use_cuda and ck.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ck["rng_cuda"].cpu())
        if is_main:
            print(f"resumed from {ckpt_path} at step {state['step']}", flush=True)
        # a stop_at schedule counts training time, not the hours between runs: its origin moves to now - train_time
        if "start_wall" in state:
            state["start_wall"] = time.time() - state["train_time"]
    if rank:
        torch.manual_seed(tc["seed"] * 1000 + rank + state["step"])  # different noise per rank
    if family != "masked" and (tc["p_substitute"] or tc["visible_weight"]):
        raise ValueError("train.p_substitute / train.visible_weight: apply to the masked family only")
    if not 0.0 <= tc["p_substitute"] < 1.0:
        raise ValueError(f"train.p_substitute: {tc['p_substitute']!r} is not a share in [0, 1)")
    if tc["visible_weight"] < 0:
        raise ValueError(f"train.visible_weight: {tc['visible_weight']!r} is negative")
    loss_module = (MaskedLossModule(model, layout.text_start, tc["p_substitute"], tc["visible_weight"])
                   if family == "masked"
                   else LossModule(model, abar, layout.text_start, tc["p_tail_clean"]))
    train_model = torch.nn.parallel.DistributedDataParallel(loss_module) if ddp else loss_module
    measured: dict = {}

    def measure() -> dict:
        # one batch of this run's own data, on the one process (ranks would measure different batches)
        measured.update(time_precisions(loss_module, [p for p in model.parameters() if p.requires_grad],
                                        data[: tc["batch_size"]].to(device), device))
        return measured

    autocast_dtype = pick_autocast(tc["precision"], device, measure if world == 1 else None)
    if measured and is_main:
        print(f"train.precision auto: fp32 {measured['fp32']:.2f} s, bf16 autocast {measured['bf16']:.2f} s per "
              f"forward and backward of one batch; training in {'bf16' if autocast_dtype else 'fp32'}", flush=True)

    def save(reason: str) -> None:
        state["saved_step"] = state["step"]
        if not is_main:
            return
        atomic_save({"model": model.state_dict(), "opt": opt.state_dict(), "ema": ema.shadow, "state": state,
                     "config": cfg, "model_config": mcfg.to_json(), "family": family,
                     "autocast": str(autocast_dtype) if autocast_dtype else "fp32", "rng_cpu": torch.get_rng_state(),
                     "rng_cuda": torch.cuda.get_rng_state(device) if use_cuda else None,
                     "hardware": hardware_string(device, world), "world_size": world}, ckpt_path)
        print(f"[{dt.datetime.utcnow():%H:%M:%S}] checkpoint at step {state['step']} ({reason})", flush=True)

    B = tc["batch_size"]
    if B % world:
        raise ValueError(f"train.batch_size ({B}) must be divisible by the number of processes ({world})")
    b = B // world
    stop_at = parse_utc(tc["stop_at"]) if tc["stop_at"] else None
    budget = tc["time_budget_s"]
    log_f = open(os.path.join(run_dir, "log.jsonl"), "a", encoding="utf-8") if is_main else None
    if is_main:
        print(f"{family} model {model.num_parameters():,} params; {n} canvases ({split.dropped} dropped of "
              f"{split.total}); vocab {len(tok)}; {hardware_string(device, world)}; batch {B}; "
              f"autocast {autocast_dtype or 'off (fp32)'}", flush=True)
    snapshots = sorted(float(m) for m in tc["snapshot_minutes"] if 60.0 * float(m) >= state["train_time"])

    model.train()
    acc: dict = {"n": 0}
    t_last = time.time()

    def write_snapshot(minutes: int) -> None:
        snap_dir = os.path.join(run_dir, "snapshots")
        os.makedirs(snap_dir, exist_ok=True)
        atomic_save({"ema": ema.shadow, "model_config": mcfg.to_json(), "family": family, "step": state["step"],
                     "train_time_s": state["train_time"]}, os.path.join(snap_dir, f"ema-{minutes:04d}min.pt"))

    stop_reason = None
    while True:
        if state["step"] >= tc["max_steps"]:
            stop_reason = "max_steps"
        elif stop_at is not None and time.time() >= stop_at:
            stop_reason = "stop_at"
        elif budget is not None and state["train_time"] >= budget:
            stop_reason = "time_budget_s"
        if ddp:  # every rank stops at the same step
            flag = torch.tensor([0 if stop_reason is None else 1], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item() and stop_reason is None:
                stop_reason = "peer"
        if stop_reason:
            break
        t0 = time.time()
        if state["pos"] + B > n:
            state["epoch"] += 1
            state["pos"] = 0
        g = torch.Generator().manual_seed(tc["seed"] * 100003 + state["epoch"])
        perm = torch.randperm(n, generator=g)
        idx = perm[state["pos"] + rank * b: state["pos"] + (rank + 1) * b]
        state["pos"] += B
        ids = data[idx].to(device)

        progress = state["step"] / tc["max_steps"]
        if budget:
            progress = max(progress, state["train_time"] / budget)
        if stop_at is not None and "start_wall" in state:
            progress = max(progress, (time.time() - state["start_wall"]) / max(1.0, stop_at - state["start_wall"]))
        lr = lr_at(tc, state["step"], progress)
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            out = train_model(ids)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc["grad_clip"])
        opt.step()
        ema.update(model, state["step"])
        state["step"] += 1
        state.setdefault("start_wall", t0)
        state["train_time"] += time.time() - t0
        for k, v in out.items():
            acc[k] = acc.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
        acc["n"] += 1
        while is_main and snapshots and state["train_time"] >= 60.0 * snapshots[0]:
            write_snapshot(int(snapshots[0]))
            snapshots.pop(0)
        if is_main and state["step"] % tc["log_every"] == 0:
            now = time.time()
            rec = {"step": state["step"], "epoch": state["epoch"], "lr": lr, "grad_norm": float(gnorm),
                   "train_time_s": round(state["train_time"], 1), "s_per_step": round((now - t_last) / acc["n"], 3),
                   "utc": dt.datetime.utcnow().strftime("%H:%M:%S")}
            rec.update({k: round(v / acc["n"], 5) for k, v in acc.items() if k != "n"})
            log_f.write(json.dumps(rec) + "\n")
            log_f.flush()
            print(json.dumps(rec), flush=True)
            acc = {"n": 0}
            t_last = now
        if state["step"] % tc["ckpt_every"] == 0:
            save("periodic")
    if state["step"] % tc["ckpt_every"] or state.get("saved_step") != state["step"]:
        save(f"stop: {stop_reason}")
    if is_main and tc["snapshot_minutes"]:  # the final EMA goes on the curve too
        write_snapshot(int(state["train_time"] // 60))
    if log_f:
        log_f.write(json.dumps({"event": "stop", "reason": stop_reason, "step": state["step"],
                                "train_time_s": round(state["train_time"], 1)}) + "\n")
        log_f.close()
    if ddp:  # the replicas must hold identical weights
        total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().view(1)
        lo, hi = total.clone(), total.clone()
        torch.distributed.all_reduce(lo, op=torch.distributed.ReduceOp.MIN)
        torch.distributed.all_reduce(hi, op=torch.distributed.ReduceOp.MAX)
        if is_main:
            print(f"ddp: {world} replicas, parameter checksum spread {float(hi - lo):.3g}", flush=True)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return 0


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: the CPUs where bf16 autocast can pay (whether it does is measured: time_precisions)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def pick_autocast(precision: str, device: torch.device, measure=None):
    """train.precision: 'auto', 'bf16' or 'fp32'.

    'auto' is bf16 on CUDA. On a CPU with AVX512-BF16/AMX it is the faster of the two by `measure()` ({"bf16": s,
    "fp32": s}; without one, bf16): without AMX bf16 autocast was 1.6x slower than fp32 on one Intel Xeon, with AMX
    3-4x faster on another. Elsewhere fp32.
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"train.precision: unknown value {precision!r} (known: auto, bf16, fp32)")
    if precision == "fp32":
        return None
    if precision == "bf16" or device.type == "cuda":
        return torch.bfloat16
    if not cpu_has_bf16():
        return None
    if measure is None:
        return torch.bfloat16
    times = measure()
    return torch.bfloat16 if times["bf16"] < times["fp32"] else None


def time_precisions(train_model: torch.nn.Module, params: list, ids: torch.Tensor, device: torch.device,
                    repeats: int = 2) -> dict:
    """Seconds per forward and backward pass on one batch in fp32 and under bf16 autocast (the median of `repeats`
    after a warm-up pass). Gradients are cleared and the RNG state restored: the run that follows is the one it would
    have been without the measurement."""
    rng = torch.get_rng_state()
    times = {}
    try:
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            runs = []
            for _ in range(repeats + 1):
                t0 = time.perf_counter()
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    out = train_model(ids)
                out["loss"].backward()
                runs.append(time.perf_counter() - t0)
                for p in params:
                    p.grad = None
            times[name] = sorted(runs[1:])[(len(runs) - 1) // 2]
    finally:
        torch.set_rng_state(rng)
    return times


class MaskedLossModule(torch.nn.Module):
    def __init__(self, model: MaskedDenoiser, text_start: int, p_substitute: float = 0.0,
                 visible_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.text_start = text_start
        self.p_substitute = p_substitute
        self.visible_weight = visible_weight

    def forward(self, ids: torch.Tensor) -> dict:
        return masked_losses(self.model, ids, self.text_start, p_substitute=self.p_substitute,
                             visible_weight=self.visible_weight)


class LossModule(torch.nn.Module):
    """Computes the whole loss inside forward, so DDP sees (and all-reduces) every parameter's gradient."""

    def __init__(self, model: Denoiser, abar: torch.Tensor, text_start: int = 0, p_tail_clean: float = 0.0):
        super().__init__()
        self.model = model
        self.text_start = text_start
        self.p_tail_clean = p_tail_clean
        self.register_buffer("abar", abar)

    def forward(self, ids: torch.Tensor) -> dict:
        if self.model.cfg.objective == "ce":
            return ce_losses(self.model, ids, self.abar, self.text_start, p_tail_clean=self.p_tail_clean)
        return diffusion_losses(self.model, ids, self.abar)


if __name__ == "__main__":
    sys.exit(main())
