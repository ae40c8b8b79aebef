"""`python -m model_core serve --ray --replicas 2`: the same app on a local Ray Serve, started once.

The deployment, the batching of `@serve.batch`, the token and the limits on Ray's HTTP proxy;
parity with the model core. Ray takes about 10-30 s to come up here, so this is one module with
one server.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from model_core import GenerationSettings, MoMask
from model_core.serve.client import Client
from tests.serve_helpers import TOKEN, call, start_server, stop_server

pytest.importorskip("ray.serve", reason="needs ray[serve] (requirements.txt)")

PROMPT = "a person jumps forward twice"


@pytest.fixture(scope="module")
def server(reference_dir):
    running = start_server(reference_dir, "--ray", "--replicas", "2", ready_s=300)
    yield running
    stop_server(running)
    assert running.process.returncode == 0, running.output()  # Ray was taken down cleanly


def test_two_replicas_answer_with_the_model_cores_motion(server, reference_dir):
    # Ray's proxy may learn of the second replica a moment after the deployment is up, when a quick
    # burst of calls can all reach the first: ask for up to a minute.
    replicas, deadline = set(), time.monotonic() + 60
    while len(replicas) < 2 and time.monotonic() < deadline:
        status, health = call(server, "GET", "/v1/health")
        assert status == 200 and health["engine"] == "ray"
        replicas.add(health["replica"])
        time.sleep(0.05)
    assert len(replicas) == 2, replicas

    bodies = [{"prompt": PROMPT, "seconds": 1 + 0.4 * i, "seed": 10 + i, "steps": 4, "include_features": False}
              for i in range(8)]
    together: dict[int, tuple] = {}
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(
        i, call(server, "POST", "/v1/generate", bodies[i]))) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    model = MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt")
    for i, body in enumerate(bodies):
        assert together[i][0] == 200, together[i]
        alone = call(server, "POST", "/v1/generate", body)[1]
        assert np.array_equal(np.asarray(together[i][1]["joints"]), np.asarray(alone["joints"]))
        want = model.generate(PROMPT, body["seconds"], seed=body["seed"], settings=GenerationSettings(steps=4))
        np.testing.assert_allclose(np.asarray(alone["joints"]), want.joints, atol=1e-5)


def test_tokens_and_limits_hold_on_ray(server):
    assert call(server, "POST", "/v1/generate", {"prompt": PROMPT}, token=None)[0] == 401
    assert call(server, "GET", "/v1/health", token="wrong")[0] == 401
    status, answer = call(server, "POST", "/v1/generate", {"prompt": PROMPT, "seconds": "abc"})
    assert status == 422 and answer["field"] == "seconds"
    status, answer = call(server, "POST", "/v1/generate", raw=b'{"prompt": "' + b"a" * 3_000_000 + b'"}')
    assert status == 413 and answer["field"] == "body"
    assert call(server, "GET", "/v1/health")[0] == 200


def test_progress_and_edits_through_ray(server, reference_dir):
    client = Client(server.url, TOKEN)
    stages = []
    answer = client.generate({"prompt": PROMPT, "seconds": 1, "steps": 3}, progress=lambda s, f: stages.append(s))
    assert len(answer["joints"][0]) == 20 and stages[-1] == "done"
    source = np.load(reference_dir / "source_motion.npy")[:40]
    edited = client.edit({"prompt": "a person kicks", "features": source.tolist(), "start_frame": 8,
                          "end_frame": 23, "steps": 3})
    assert (edited["frame_start"], edited["frame_end"]) == (8, 24) and edited["lengths"] == [40]


def test_replicas_ask_for_what_the_cluster_has():
    from model_core import ModelError
    from model_core.serve.ray_app import replica_gpus

    assert replica_gpus("auto", 2, {"CPU": 16, "GPU": 2}) == 1
    assert replica_gpus("auto", 4, {"CPU": 16, "GPU": 2}) == 0  # not a GPU each: all on CPUs
    assert replica_gpus("cpu", 2, {"CPU": 2, "GPU": 8}) == 0
    with pytest.raises(ModelError, match="need 4 GPUs; the Ray cluster has 2"):
        replica_gpus("cuda", 4, {"CPU": 16, "GPU": 2})
    with pytest.raises(ModelError, match="CPU slot"):
        replica_gpus("cpu", 3, {"CPU": 2})
