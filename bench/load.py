"""Generation on an idle machine and under background load, for each way PyTorch's threads may wait.

    python -m bench.load [--repeats 5] [--threads 2] [--policies spin,passive,...] [--tiny]

Users' machines are never idle. Each policy gets its own process (the policy has to be in the
environment before torch is imported) that loads the released-shape weights once and times one
generation (1 x 196 frames, 10 steps) when asked. The benchmark then runs `--repeats` blocks: every
policy once on the idle machine, then, with a background process started that keeps every core
busy multiplying matrices, every policy once more; the load is stopped at the end of each block
and the order of policies rotates. Reported side by side per policy: idle and loaded, median and
worst. `default` is what the command lines, the server and the add-on get (model_core sets it at
import); the others name their variables. The machine may be shared: compare policies within one
run, and repeat the run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a person walks forward, turns around and waves"
POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
# name -> (environment, threads; 0 = the --threads value)
POLICIES: dict[str, tuple[dict[str, str], int]] = {
    "default": ({}, 0),                                    # model_core's own choice, imported first
    "spin": ({}, 0),                                       # GNU OpenMP's default (torch imported first)
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 0),
    "spin_1k": ({"GOMP_SPINCOUNT": "1000"}, 0),
    "spin_3k": ({"GOMP_SPINCOUNT": "3000"}, 0),
    "spin_10k": ({"GOMP_SPINCOUNT": "10000"}, 0),
    "spin_100k": ({"GOMP_SPINCOUNT": "100000"}, 0),
    "spin_1M": ({"GOMP_SPINCOUNT": "1000000"}, 0),
    "one_thread": ({}, 1),
}
SETTLE_S = 1.0  # let the background load reach every core before timing
MACHINE_LOAD: list[float] = []  # the 1-minute load average at the start of each block (others' work too)


# ----------------------------------------------------------------------------- background load


def burn(cores: int, stop_after: float) -> None:
    """Keep `cores` cores busy multiplying matrices (one thread each; NumPy releases the GIL)."""
    import numpy as np

    deadline = time.monotonic() + stop_after

    def work() -> None:
        a = np.random.default_rng(0).random((256, 256))
        while time.monotonic() < deadline:
            a = a @ a
            a /= np.abs(a).max()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(cores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def start_load(cores: int, stop_after: float = 900.0) -> subprocess.Popen:
    """The background process; it ends on its own after `stop_after` seconds if never stopped."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "bench.load", "--burn", str(cores), "--burn-for",
                             str(stop_after)], cwd=ROOT, env=env)


def stop_load(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ----------------------------------------------------------------------------- one policy (child)


def serve(folder: Path, policy: str, threads: int) -> None:
    """Inside the child: load, warm up, then time one generation per line read from stdin."""
    if policy == "default":
        from model_core import threads as wait  # first: its policy enters the environment before torch loads
    import torch

    if policy != "default":
        from model_core import threads as wait
    torch.set_num_threads(threads)
    from model_core import GenerationSettings, MoMask

    model = MoMask.load(folder / "checkpoints", folder / "clip" / "ViT-B-32.pt")
    settings = GenerationSettings(steps=10)
    model.generate(PROMPT, frames=196, settings=settings)  # warm-up: first touch of the weights, kernel choice
    env = {n: os.environ[n] for n in POLICY_VARIABLES if n in os.environ}
    print(json.dumps({"env": env, "threads": torch.get_num_threads(), "model_core_policy": wait.applied_at_import()}),
          flush=True)
    for _ in sys.stdin:
        start = time.perf_counter()
        model.generate(PROMPT, frames=196, settings=settings)
        print(round(time.perf_counter() - start, 4), flush=True)


class Child:
    """One policy's process: the model loaded once, timed on request (so policies take turns)."""

    def __init__(self, folder: Path, policy: str, threads: int):
        variables, own_threads = POLICIES[policy]
        env = {k: v for k, v in os.environ.items() if k not in POLICY_VARIABLES + ("OMP_NUM_THREADS",)}
        env.update(variables, PYTHONPATH=str(ROOT))
        self.policy = policy
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.load", "--child", policy, "--folder", str(folder), "--threads",
             str(own_threads or threads)], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        self.info = self._read(json.loads)
        self.idle: list[float] = []
        self.loaded: list[float] = []

    def _read(self, parse):
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"benchmark child for {self.policy} stopped (exit {self.process.wait()})")
        return parse(line)

    def time_one(self) -> float:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self._read(float)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def summarise(child: Child, baseline_idle: float | None) -> dict:
    idle, loaded = child.idle, child.loaded
    out = dict(child.info, idle_s=idle, loaded_s=loaded, idle_median_s=round(statistics.median(idle), 4),
               idle_worst_s=max(idle), loaded_median_s=round(statistics.median(loaded), 4), loaded_worst_s=max(loaded))
    out["loaded_worst_over_idle"] = round(out["loaded_worst_s"] / out["idle_median_s"], 2)
    if baseline_idle:
        out["idle_over_spin"] = round(out["idle_median_s"] / baseline_idle, 3)
    return out


def measure(folder: Path, policies: list[str], args: argparse.Namespace) -> dict[str, Child]:
    """Blocks of one idle and one loaded run of every policy in turn (the order rotates), so a change in
    what the shared machine is doing touches every policy and both conditions alike."""
    children = [Child(folder, p, args.threads) for p in policies]
    try:
        for block in range(args.repeats):
            MACHINE_LOAD.append(round(os.getloadavg()[0], 2))
            order = children[block % len(children):] + children[:block % len(children)]
            for child in order:
                child.idle.append(child.time_one())
            load = start_load(args.cores)
            try:
                time.sleep(SETTLE_S)
                for child in order:
                    child.loaded.append(child.time_one())
            finally:
                stop_load(load)
    finally:
        for child in children:
            child.close()
    return {c.policy: c for c in children}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2, help="cores the background load keeps busy")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated: " + ", ".join(POLICIES))
    parser.add_argument("--tiny", action="store_true", help="small reference weights (a smoke run for the tests)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--burn", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--burn-for", type=float, default=900.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.burn:
        burn(args.burn, args.burn_for)
        return 0
    if args.child:
        serve(Path(args.folder), args.child, args.threads)
        return 0
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        parser.error(f"unknown policies {unknown}: choose from {', '.join(POLICIES)}")
    from bench.speed import CACHE, SHARED
    from model_core.testing.random_weights import released_shapes_folder

    folder = SHARED / "reference" if args.tiny else released_shapes_folder(CACHE, SHARED)
    from model_core import threads as wait

    report: dict = {"case": "generate 1 x 196 frames, 10 steps", "threads": args.threads, "repeats": args.repeats,
                    "background_load": f"another process multiplying 256x256 matrices on {args.cores} cores",
                    "weights": "reference (tiny)" if args.tiny else "released shapes, random values",
                    "default_policy": dict(wait.DEFAULT_POLICY), "policies": {}}
    children = measure(folder, policies, args)
    baseline = statistics.median(children["spin"].idle) if "spin" in children else None
    for name, child in children.items():
        report["policies"][name] = summarise(child, baseline)
    report["machine_load_per_block"] = MACHINE_LOAD
    if "default" in report["policies"]:
        chosen = report["policies"]["default"]
        report["default_loaded_worst_within_3x_idle"] = chosen["loaded_worst_over_idle"] <= 3.0
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
