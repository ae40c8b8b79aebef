"""Speed and memory of the model core at the released shapes, printed as one JSON document.

    python -m bench.speed [--threads 2] [--device cpu] [--repeats 5] [--tiny]

`gen_1x196_10_directed_s` is the same 1×196 generation meeting a pelvis path (every 4th frame)
and two whole-body key poses, timed in turns with the free one (`free_1x196_10_paired_s`;
`directed_over_free` their ratio).
Each path (exact, and the opt-in fast path, reported under `fast_` keys) runs in a fresh
process so load time and resident memory are those of a first use. Times are medians of
`--repeats` runs after one warm-up. `--tiny` uses ../shared/reference's small weights and one
repeat (a smoke run for the test suite). Absolute times move with machine load: compare the
two paths from the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CACHE = ROOT / ".cache" / "bench"  # random weights at the released shapes, written once, outside git
PROMPT = "a person walks forward, turns around and waves"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    """Resident memory now (VmRSS), in MB."""
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB. Not getrusage's ru_maxrss: Linux carries that
    over from the parent through fork and exec, so a child reported the parent's peak (the weights it wrote)."""
    return _status_mb("VmHWM")


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up: first-touch of weights, kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 4)


def _paired_median_times(first, second, repeats: int) -> tuple[float, float]:
    """Medians of two callables timed in turns (a, b, a, b, ...) after one warm-up each: on a
    shared machine a burst of load then falls on both, so their ratio holds."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return round(statistics.median(times[0]), 4), round(statistics.median(times[1]), 4)


def _transformer_weights(model) -> list[tuple]:
    """(weight, bias) of every matrix product in a transformer's encoder layers and output head."""
    pairs = []
    for layer in model.seqTransEncoder.layers:
        attention = layer.self_attn
        pairs += [(attention.in_proj_weight, attention.in_proj_bias),
                  (attention.out_proj.weight, attention.out_proj.bias),
                  (layer.linear1.weight, layer.linear1.bias), (layer.linear2.weight, layer.linear2.bias)]
    head = model.output_process
    return pairs + [(head.dense.weight, head.dense.bias), (head.poseFinal.weight, head.poseFinal.bias)]


def matmul_floor(model, batch: int, tokens: int, steps: int):
    """A callable doing only the transformers' encoder and head matrix products (the bulk of a
    generation's arithmetic), in fp32 at the model's sizes and on its device.

    Guided passes stack the text and no-text rows (x2); the masked transformer sees the text
    token plus `tokens` positions for `steps` passes, the residual one two prefix tokens plus
    `tokens` for each residual layer. Whatever a generation takes beyond this is overhead.
    """
    import torch
    import torch.nn.functional as F

    passes = [(model.mask_model, 1, steps), (model.residual_model, 2, model.rvq.config.num_quantizers - 1)]
    work = []
    for net, prefix, count in passes:
        rows = 2 * batch * (tokens + prefix)
        pairs = _transformer_weights(net)
        inputs = {w.shape[1]: torch.randn(rows, w.shape[1], device=w.device) for w, _ in pairs}
        work += [(inputs, pairs)] * count

    def run() -> None:
        with torch.no_grad():
            for inputs, pairs in work:
                for weight, bias in pairs:
                    F.linear(inputs[weight.shape[1]], weight, bias)
        if model.device.type == "cuda":
            torch.cuda.synchronize()  # kernels run asynchronously: time them, not their launch

    return run


def directed_constraints(frames: int = 196) -> list:
    """A pelvis path along a quarter circle (every 4th frame) and two whole-body key poses on it
    (the skeleton's rest pose, turned to face along the path): the case the issue names."""
    import numpy as np

    from model_core.control import JOINT_NAMES, Constraint
    from model_core.motion.skeleton import T2M, T2M_UNIFORM_OFFSETS

    angle = np.linspace(0, np.pi / 2, frames)
    path = np.stack([2.0 * (1 - np.cos(angle)), 2.0 * np.sin(angle)], 1)
    rest = np.zeros((T2M.joints_num, 3))
    for j in T2M.topological_order:
        rest[j] = rest[T2M.parents[j]] + T2M_UNIFORM_OFFSETS[j]
    rest[:, 1] -= rest[:, 1].min()
    keys = {frames // 3: None, 2 * frames // 3: None}
    constraints = []
    for frame in keys:
        turn = angle[frame]
        c, s = np.cos(turn), np.sin(turn)
        pose = rest @ np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]]) + [path[frame, 0], 0, path[frame, 1]]
        constraints += [Constraint(frame, name, tuple(map(float, pose[j]))) for j, name in enumerate(JOINT_NAMES)]
    constraints += [Constraint(f, "pelvis", (float(path[f, 0]), float(path[f, 1])), "xz")
                    for f in range(0, frames, 4) if f not in keys]
    return constraints


def measure(folder: Path, threads: int, device: str, repeats: int, fast: bool) -> dict:
    """Run inside the child process: load, then time every case."""
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    from model_core import GenerationSettings, MoMask

    model = MoMask.load(folder / "checkpoints", folder / "clip" / "ViT-B-32.pt", device=device, fast=fast)
    load_s = time.perf_counter() - start
    rss_after_load = _rss_mb()
    ten, eighteen = GenerationSettings(steps=10), GenerationSettings(steps=18)
    result = {
        "load_s": round(load_s, 4),
        "rss_after_load_mb": round(rss_after_load, 1),
        "text_s": _median_time(lambda: model.encode_text([PROMPT]).cpu(), repeats),  # .cpu(): wait for CUDA
        "gen_1x196_10_s": _median_time(lambda: model.generate(PROMPT, frames=196, settings=ten), repeats),
        "gen_1x196_18_s": _median_time(lambda: model.generate(PROMPT, frames=196, settings=eighteen), repeats),
        "gen_8x196_10_s": _median_time(lambda: model.generate([PROMPT] * 8, frames=196, settings=ten),
                                       max(1, repeats // 2)),
        "gen_1x48_10_s": _median_time(lambda: model.generate(PROMPT, frames=48, settings=ten), repeats),
    }
    directed = directed_constraints()
    free_s, directed_s = _paired_median_times(
        lambda: model.generate(PROMPT, frames=196, settings=ten),
        lambda: model.generate(PROMPT, frames=196, settings=ten, constraints=directed), max(repeats, 5))
    result.update({"free_1x196_10_paired_s": free_s, "gen_1x196_10_directed_s": directed_s,
                   "directed_over_free": round(directed_s / free_s, 3)})
    unit = model.frames_per_token
    if not fast:  # the fp32 floor: the fast path's int8 layers have no fp32 weights to time
        result.update({
            "floor_1x196_10_s": _median_time(matmul_floor(model, 1, 196 // unit, 10), repeats),
            "floor_8x196_10_s": _median_time(matmul_floor(model, 8, 196 // unit, 10), max(1, repeats // 2)),
            "floor_1x48_10_s": _median_time(matmul_floor(model, 1, 48 // unit, 10), repeats),
        })
    source = model.generate(PROMPT, frames=196, settings=ten, seed=1)
    ids = model.encode(source.features[:, :196])
    mask = torch.zeros(ids.shape[:2], dtype=torch.bool)
    mask[:, ids.shape[1] // 3: 2 * ids.shape[1] // 3] = True
    result["inpaint_1x196_s"] = _median_time(
        lambda: model.edit(["the person jumps"], ids, mask, settings=GenerationSettings(steps=10)), repeats)
    result["rss_peak_mb"] = round(_peak_rss_mb(), 1)
    return result


def token_agreement(reference: Path) -> float:
    """Share of greedy token ids on which the fast path agrees with the exact one (reference cases)."""
    import numpy as np
    import torch

    from model_core import GenerationSettings, MoMask

    greedy = GenerationSettings(steps=10, temperature=1e-9, residual_temperature=1e-9)
    with np.load(reference / "cases.npz") as cases:
        prompts = [str(p) for p in cases["prompts"]]
        source = torch.from_numpy(cases["vq_input"])
        edit_mask = torch.from_numpy(cases["edit_mask"]).bool()
    ids = {}
    for fast in (False, True):
        model = MoMask.load(reference / "checkpoints", reference / "clip" / "ViT-B-32.pt", fast=fast)
        generated = model.generate(prompts, frames=196, settings=greedy).tokens
        codes, _ = model.rvq.encode(source)
        edited = model.edit(prompts[1:2], codes, edit_mask, settings=greedy).tokens
        ids[fast] = np.concatenate([generated.ravel(), edited.ravel()])
    return round(float((ids[False] == ids[True]).mean()), 4)


def _child(args: argparse.Namespace) -> None:
    result = measure(Path(args.folder), args.threads, args.device, args.repeats, args.fast)
    print(json.dumps(result))


def _run_child(folder: Path, args: argparse.Namespace, fast: bool) -> dict:
    command = [sys.executable, "-m", "bench.speed", "--child", "--folder", str(folder), "--threads",
               str(args.threads), "--device", args.device, "--repeats", str(args.repeats)]
    command += ["--fast"] if fast else []
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cold_process_s(folder: Path, args: argparse.Namespace, fast: bool) -> float:
    """Wall time of a fresh interpreter that imports the model core and loads the models."""
    code = ("import sys, torch; from model_core import MoMask; "
            f"MoMask.load(sys.argv[1] + '/checkpoints', sys.argv[1] + '/clip/ViT-B-32.pt', fast={fast})")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, env=env, check=True)
    return round(time.perf_counter() - start, 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="small reference weights, one repeat (smoke run)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fast", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    from model_core.testing.random_weights import released_shapes_folder

    reference = SHARED / "reference"
    if args.tiny:
        folder, args.repeats = reference, 1
    else:
        folder = released_shapes_folder(CACHE, SHARED)
    import torch

    report: dict = {"threads": args.threads, "device": args.device, "torch": torch.__version__,
                    "weights": "reference (tiny)" if args.tiny else "released shapes, random values"}
    paths = (False, True) if args.device == "cpu" else (False,)  # the int8 fast path is CPU-only
    for fast in paths:
        prefix = "fast_" if fast else ""
        result = _run_child(folder, args, fast)
        result["cold_process_s"] = _cold_process_s(folder, args, fast)
        report.update({prefix + key: value for key, value in result.items()})
    if True in paths:
        report["fast_token_agreement"] = token_agreement(reference)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
