"""Requests per second of the model server (one process) under 1, 4 and 8 concurrent clients, as JSON.

    python -m bench.serve [--clients 1 4 8] [--requests 16] [--seconds 4] [--steps 10] [--threads 2] [--tiny]

Runs `python -m model_core serve` on random weights at the released shapes (model_core.testing)
twice: with batching (the default), and with `--max-batch 1` as the baseline in the same run,
so the figures compare within one run of this (noisy, shared) machine. Each level sends
`--requests` requests with distinct seeds from that many client threads, after a warm-up.
`--tiny` uses ../shared/reference's small weights (a smoke run for the test suite).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from model_core.serve import spawn
from model_core.serve.client import Client, ServerError

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a person walks forward, turns around and waves"
TOKEN = "bench-token"


class _Server:
    """`python -m model_core serve` on the weights in `folder`, for one `with` block."""

    def __init__(self, folder: Path, threads: int, max_batch: int):
        self.log = tempfile.TemporaryFile()
        port = spawn.free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads), MOMASK_SERVER_TOKEN=TOKEN)
        self.process = spawn.start(spawn.serve_command(
            sys.executable, folder / "checkpoints", folder / "clip" / "ViT-B-32.pt", port=port, device="cpu",
            extra=["--max-batch", str(max_batch)]), env=env, log=self.log, cwd=ROOT)
        self.client = Client(f"http://{spawn.HOST}:{port}", TOKEN)

    def __enter__(self) -> _Server:
        try:
            spawn.wait_healthy(self.process, self.client, timeout=300)
        except ServerError as err:
            self.__exit__()
            raise SystemExit(f"{err}:\n{self.output()}") from None
        return self

    def __exit__(self, *_exc) -> None:
        spawn.stop(self.process, timeout=60)
        self.log.close()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]


def requests_per_second(server: Client, clients: int, requests: int, body: dict, first_seed: int) -> float:
    """`requests` requests with distinct seeds, spread over `clients` threads; completed per second."""
    seeds = list(range(first_seed, first_seed + requests))
    failures: list[str] = []

    def client(mine: list[int]) -> None:
        for seed in mine:
            try:
                server.generate({**body, "seed": seed})
            except ServerError as err:  # a figure over failed requests would be no figure
                failures.append(str(err))

    threads = [threading.Thread(target=client, args=(seeds[i::clients],)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} of {requests} requests failed: {failures[0]}")
    return round(requests / (time.perf_counter() - start), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="the server's PyTorch threads")
    parser.add_argument("--tiny", action="store_true", help="small reference weights (smoke run)")
    args = parser.parse_args(argv)
    from bench.speed import CACHE, SHARED
    from model_core.testing.random_weights import released_shapes_folder

    folder = SHARED / "reference" if args.tiny else released_shapes_folder(CACHE, SHARED)
    body = {"prompt": PROMPT, "seconds": args.seconds, "steps": args.steps, "include_features": False}
    report: dict = {"weights": "reference (tiny)" if args.tiny else "released shapes, random values",
                    "seconds": args.seconds, "steps": args.steps, "threads": args.threads,
                    "requests_per_level": args.requests}
    for name, max_batch in (("batched", 16), ("unbatched", 1)):
        with _Server(folder, args.threads, max_batch) as server:
            server.client.generate({**body, "seed": 0})  # warm-up: first-touch of weights, kernel selection
            report[f"{name}_requests_per_s"] = {
                str(c): requests_per_second(server.client, c, max(args.requests, c), body, 1000 * c)
                for c in args.clients}
    top = str(max(args.clients))
    batched, unbatched = report["batched_requests_per_s"], report["unbatched_requests_per_s"]
    report[f"batched_{top}_clients_vs_1"] = round(batched[top] / batched[str(min(args.clients))], 2)
    report[f"batched_vs_unbatched_{top}_clients"] = round(batched[top] / unbatched[top], 2)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
