"""Ray Serve: the same app on replicas spread over a Ray cluster's GPUs and nodes (or a local Ray).

Each replica loads the model once and answers through `create_app` (the routes of the
one-process server); `@serve.batch` gathers the requests that reach a replica together into one
model call. Ray's HTTP proxy listens on the host and port asked for; the token check and the
limits are the app's, so they hold on Ray as in one process. The model core travels to the
cluster with the job (`py_modules`); the checkpoint and CLIP paths must exist on every node.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray import serve

from ..settings import SERVER_BATCH
from .engine import Ticket
from .options import ServeOptions, load_engine

APP_NAME = "momask"
MAX_QUEUED = 256  # past this, Ray's proxy answers 503 instead of holding more requests in memory
BATCH_WAIT_S = 0.002  # a lone request waits this long for company; more arrives while a batch runs


@serve.deployment(max_ongoing_requests=64, max_queued_requests=MAX_QUEUED, health_check_period_s=5)
@serve.ingress()
class MotionServer:
    """One replica: the loaded model and the service `create_app` calls."""

    def __init__(self, options: ServeOptions):
        self.options = options
        self.engine = load_engine(options)
        self._generate_batch.set_max_batch_size(options.max_batch)

    def __serve_build_asgi_app__(self):
        from .app import create_app

        return create_app(self, token=self.options.token)

    def info(self) -> dict[str, Any]:
        return {**self.engine.info(), "engine": "ray", "limits": {"max_batch": self.options.max_batch}}

    async def generate(self, ticket: Ticket) -> None:
        await self._generate_batch(ticket)

    async def edit(self, ticket: Ticket) -> None:
        await asyncio.to_thread(self.engine.edit, ticket)

    @serve.batch(max_batch_size=SERVER_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _generate_batch(self, tickets: list[Ticket]) -> list[None]:
        await asyncio.to_thread(self.engine.generate, tickets)  # each ticket gets its own answer or error
        return [None] * len(tickets)


def serve_on_ray(options: ServeOptions, *, host: str, port: int, replicas: int, address: str | None,
                 num_cpus: int | None = None) -> int:
    """Deploy, say where it listens, and keep it up until SIGINT or SIGTERM; then take it all down."""
    import ray

    runtime_env = replica_environment()
    if address:
        ray.init(address=address, runtime_env=runtime_env, logging_level="WARNING")
    else:  # a local Ray: at least one CPU slot per replica, whatever the core count
        cpus = num_cpus or max(os.cpu_count() or 1, replicas)
        ray.init(num_cpus=cpus, runtime_env=runtime_env, include_dashboard=False, logging_level="WARNING")
    signal.signal(signal.SIGTERM, _interrupt)  # stop even in the middle of deploying
    try:
        serve.start(http_options={"host": host, "port": port})
        gpus = replica_gpus(options.device, replicas, ray.cluster_resources())
        device = "cuda" if gpus else "cpu"  # a replica without a GPU slot must not take one
        app = MotionServer.options(num_replicas=replicas, ray_actor_options={"num_cpus": 1, "num_gpus": gpus})
        serve.run(app.bind(replace(options, device=device)), name=APP_NAME, route_prefix="/")
        print(f"{replicas} Ray Serve replica(s) on {device}; serving on http://{host}:{port}", file=sys.stderr,
              flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if address:
            serve.delete(APP_NAME)  # a shared cluster keeps its other applications
        ray.shutdown()  # a local Ray goes with it
    return 0


def replica_environment() -> dict[str, Any]:
    """Ray's runtime_env for the replicas: the model core's code, and no environment variables, so each
    replica's PyTorch threads wait as `model_core.threads` sets it (a policy variable put here would
    read there as the user's own choice)."""
    import model_core

    return {"py_modules": [str(Path(model_core.__file__).resolve().parent)]}


def replica_gpus(device: str, replicas: int, resources: dict) -> int:
    """GPUs per replica (0 or 1) for the device asked and what the cluster has; an impossible ask is
    an error now rather than replicas that wait forever for a slot."""
    from ..errors import ModelError

    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    if device == "cuda" and gpus < replicas:
        raise ModelError(f"{replicas} replicas on CUDA need {replicas} GPUs; the Ray cluster has {gpus}")
    if cpus < replicas:
        raise ModelError(f"{replicas} replicas need a CPU slot each; the Ray cluster has {cpus}")
    return 1 if device == "cuda" or (device == "auto" and gpus >= replicas) else 0


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt
