"""`python -m model_core serve` in one process: real HTTP on a free loopback port, the reference model.

Parity with the model core, batching that keeps each request's own result, bad requests answered
4xx naming the field, tokens, the refusal to listen beyond loopback without one, progress and
cancel over a stream, range edits and extensions, and batch jobs through the server.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from model_core import GenerationSettings, MoMask
from model_core.generation import timeline
from model_core.motion import joints_to_features
from model_core.serve.client import Client, ServerError
from model_core.serve.command import is_loopback
from tests.conftest import ROOT
from tests.serve_helpers import TOKEN, call, start_server, stop_server

PROMPT = "a person jumps forward twice"


@pytest.fixture(scope="module")
def server(reference_dir):
    running = start_server(reference_dir, "--max-batch", "16")
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def model(reference_dir) -> MoMask:
    return MoMask.load(reference_dir / "checkpoints", reference_dir / "clip" / "ViT-B-32.pt")


def joints(answer: dict) -> np.ndarray:
    return np.asarray(answer["joints"], dtype=np.float64)


def test_health_names_the_models_and_the_api_is_described(server):
    status, health = call(server, "GET", "/v1/health")
    assert status == 200 and health["status"] == "ok" and health["engine"] == "uvicorn"
    assert health["device"] == "cpu" and health["version"]
    assert health["models"]["rvq"].startswith("rvq_") and health["models"]["dataset"] == "t2m"
    status, spec = call(server, "GET", "/openapi.json", token=None)
    assert status == 200 and {"/v1/health", "/v1/generate", "/v1/edit"} <= set(spec["paths"])
    limits = spec["components"]["schemas"]["GenerateRequest"]["properties"]["variations"]
    assert limits["maximum"] >= 1  # the limits are part of the published description


def test_generate_gives_the_model_cores_motion(server, model):
    body = {"prompt": PROMPT, "seconds": 2, "seed": 5, "steps": 4, "variations": 2}
    status, answer = call(server, "POST", "/v1/generate", body)
    assert status == 200, answer
    want = model.generate(PROMPT, 2.0, seed=5, variations=2, settings=GenerationSettings(steps=4))
    assert joints(answer).shape == (2, 40, 22, 3) and answer["lengths"] == [40, 40] and answer["fps"] == 20
    np.testing.assert_allclose(joints(answer), want.joints, atol=1e-5)
    np.testing.assert_allclose(np.asarray(answer["features"]), want.features, atol=1e-5)


def test_requests_that_share_a_call_keep_their_own_results(server):
    """Different seeds, lengths and settings sent at once: each answer equals the same request sent alone."""
    bodies = [{"prompt": PROMPT, "seconds": s, "seed": seed, "steps": steps, "include_features": False}
              for seed, s, steps in [(1, 2, 4), (2, 3.2, 4), (3, 1, 4), (4, 2, 5), (5, 2.4, 5), (6, 2, 4)]]
    bodies.append({"prompts": ["a person waves", "a person sits"], "seconds": [1.2, 2], "seed": 9, "steps": 4,
                   "variations": 2, "include_features": False})
    bodies.append({"prompt": "a person walks", "seed": 3, "steps": 4, "include_features": False})  # estimated length
    before = call(server, "GET", "/v1/health")[1]["stats"]
    # keep the model busy so that the burst queues up behind it and forms shared calls
    blocker = threading.Thread(target=call, args=(server, "POST", "/v1/generate",
                                                  {"prompt": "busy", "seconds": 9.6, "steps": 60, "variations": 4}))
    blocker.start()
    time.sleep(0.2)
    together: dict[int, tuple] = {}
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, call(server, "POST", "/v1/generate",
                                                                                   bodies[i])))
               for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads + [blocker]:
        thread.join()
    after = call(server, "GET", "/v1/health")[1]["stats"]
    assert after["requests"] - before["requests"] == len(bodies) + 1
    assert after["model_calls"] - before["model_calls"] < len(bodies)  # some requests shared a call
    for i, body in enumerate(bodies):
        status, alone = call(server, "POST", "/v1/generate", body)
        assert status == 200 and together[i][0] == 200, together[i]
        assert np.array_equal(joints(together[i][1]), joints(alone)), f"request {i} changed with its batch"
        assert together[i][1]["lengths"] == alone["lengths"]


@pytest.mark.parametrize(("body", "raw", "status", "field"), [
    (None, b"{not json", 400, "body"),
    ({"prompt": "  ", "seconds": 4}, None, 422, "prompt"),
    ({"prompt": PROMPT, "seconds": -1}, None, 422, "seconds"),
    ({"prompt": PROMPT, "seconds": "abc"}, None, 422, "seconds"),
    ({"prompt": PROMPT, "seconds": 4, "variations": 100000}, None, 422, "variations"),
    ({"prompt": "a" * 2000}, None, 422, "prompt"),
    ({"prompt": PROMPT, "prompts": [PROMPT]}, None, 422, "prompt"),
    ({"prompts": [PROMPT, PROMPT], "seconds": [1.0]}, None, 422, "seconds"),
    ({"prompt": PROMPT, "steps": 0}, None, 422, "steps"),
    ({"prompt": PROMPT, "topk": 1}, None, 422, "topk"),
    ({"prompt": PROMPT, "temperature": 1e-12}, None, 422, "temperature"),  # the model's own limit, named
    ({"prompt": PROMPT, "residual_temperature": 0}, None, 422, "residual_temperature"),
    ({"prompt": PROMPT, "sekonds": 4}, None, 422, "sekonds"),
    ({"prompt": PROMPT, "seed": -1}, None, 422, "seed"),
    (None, b"[1, 2]", 422, "body"),
    (None, b'{"prompt": "x", "seconds": NaN}', 422, "seconds"),
    (None, b'{"prompt": "' + b"a" * 3_000_000 + b'"}', 413, "body"),
])
def test_bad_requests_are_4xx_naming_the_field(server, body, raw, status, field):
    got, answer = call(server, "POST", "/v1/generate", body, raw=raw)
    assert got == status and isinstance(answer, dict), (got, answer)
    assert answer["field"] == field and answer["error"].startswith(f"{field}"), answer
    assert call(server, "GET", "/v1/health")[0] == 200


def test_wrong_method_and_unknown_routes_answer_json(server):
    status, answer = call(server, "GET", "/v1/generate")
    assert status == 405 and "error" in answer
    status, answer = call(server, "GET", "/v1/nothing")
    assert status == 404 and "error" in answer


def test_constraints_direct_the_motion_and_bad_ones_name_the_field(server, model):
    from model_core.control import Constraint, Facing
    from model_core.serve.client import RemoteModel

    constraints = [Constraint(0, "pelvis", (0.5, 0.2), "xz"), Constraint(20, "left_wrist", (0.6, 1.4, 0.8)),
                   Facing(30, 1.0)]
    remote = RemoteModel(Client(server.url, TOKEN))
    settings = GenerationSettings(steps=3)
    got = remote.generate(PROMPT, 2.0, seed=2, settings=settings, constraints=constraints)
    want = model.generate(PROMPT, 2.0, seed=2, settings=settings, constraints=constraints)
    np.testing.assert_allclose(got.joints, want.joints, atol=1e-4)
    assert np.linalg.norm(got.joints[0, 20, 20] - [0.6, 1.4, 0.8]) < 1e-3
    segments = [timeline.Segment(PROMPT, 40), timeline.Segment("a person sits down", 40)]
    got = remote.generate_sequence(segments, settings=settings, constraints=constraints)
    want = model.generate_sequence(segments, settings=settings, constraints=constraints)
    np.testing.assert_allclose(got.joints, want.joints, atol=1e-4)
    bad = {"prompt": PROMPT, "seconds": 2, "steps": 3,
           "constraints": [{"frame": 0, "joint": "pelvis", "position": [0.0, 0.0, 0.0], "axes": "xz"}]}
    for body in (bad, {**bad, "prompt": None, "seconds": None, "sequence": [{"prompt": PROMPT, "seconds": 2}]}):
        status, answer = call(server, "POST", "/v1/generate", {k: v for k, v in body.items() if v is not None})
        assert status == 422 and answer["field"] == "constraints" and "constraint 0" in answer["error"], answer


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_every_route_needs_the_token(server, token):
    for method, path, body in (("GET", "/v1/health", None), ("POST", "/v1/generate", {"prompt": PROMPT}),
                               ("POST", "/v1/edit", {}), ("POST", "/v1/generate", None)):
        status, answer = call(server, method, path, body, token=token, raw=b"{bad" if body is None else None)
        assert status == 401 and answer["field"] == "Authorization", (path, answer)


def test_refuses_to_listen_beyond_loopback_without_a_token(reference_dir):
    env = {k: v for k, v in os.environ.items() if k != "MOMASK_SERVER_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "model_core", "serve", "--checkpoints", "unused", "--clip", "unused",
                           "--host", "0.0.0.0"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(env, PYTHONPATH=str(ROOT)))
    assert done.returncode == 2 and "refusing to listen on 0.0.0.0 without a token" in done.stderr
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("studio-gpu")


def test_progress_streams_and_a_client_that_leaves_cancels_its_request(server):
    client = Client(server.url, TOKEN)
    stages = []
    answer = client.generate({"prompt": PROMPT, "seconds": 1, "steps": 3}, progress=lambda s, f: stages.append(s))
    assert joints(answer).shape == (1, 20, 22, 3)
    assert stages[0] == "queued" and "base tokens" in stages and stages[-1] == "done"

    class Stop(Exception):
        pass

    def leave(stage: str, _fraction: float) -> None:
        if stage == "base tokens":
            raise Stop

    before = client.health()["stats"]["cancelled"]
    with pytest.raises(Stop):
        client.generate({"prompt": PROMPT, "seconds": 9.6, "steps": 100, "variations": 8}, progress=leave)
    deadline = time.monotonic() + 60
    while client.health()["stats"]["cancelled"] == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.health()["stats"]["cancelled"] == before + 1  # the server stopped it
    with pytest.raises(ServerError, match="refused the request"):
        client.generate({"prompt": " "}, progress=lambda s, f: None)


def test_edit_regenerates_a_range_and_extends(server, model, reference_dir):
    source = np.load(reference_dir / "source_motion.npy")[:80].astype(np.float32)
    body = {"prompt": "a person kicks", "features": source.tolist(), "start_frame": 20, "end_frame": 43, "seed": 2,
            "steps": 4}
    status, answer = call(server, "POST", "/v1/edit", body)
    assert status == 200, answer
    want = timeline.edit_range(model, source, 20, 43, "a person kicks", seed=2,
                               settings=GenerationSettings(steps=4, residual_guidance=2.0))
    assert (answer["frame_start"], answer["frame_end"]) == (want.frame_start, want.frame_end) == (20, 44)
    np.testing.assert_allclose(joints(answer), want.motion.joints, atol=1e-5)

    motion_joints = want.motion.joints[0, :60]
    body = {"prompt": "a person walks on", "joints": motion_joints.tolist(), "frames_after": 16, "steps": 4}
    status, answer = call(server, "POST", "/v1/edit", body)
    assert status == 200, answer
    features, _ = joints_to_features(motion_joints)
    want = timeline.extend(model, features, "a person walks on", frames_after=16,
                           settings=GenerationSettings(steps=4, residual_guidance=2.0))
    assert answer["frame_end"] - answer["frame_start"] == 16
    np.testing.assert_allclose(joints(answer), want.motion.joints, atol=1e-5)


@pytest.mark.parametrize(("body", "field"), [
    ({"prompt": "x", "start_frame": 0, "end_frame": 8}, "features"),
    ({"prompt": "x", "features": [[0.0] * 263] * 8, "joints": [[[0.0] * 3] * 22] * 8, "frames_after": 4},
     "features"),
    ({"prompt": "x", "features": [[0.0] * 263] * 8, "start_frame": 0, "end_frame": 8, "frames_after": 4},
     "start_frame"),
    ({"prompt": "x", "features": [[0.0] * 263] * 40, "start_frame": 0, "end_frame": 60}, "end_frame"),
    ({"prompt": "x", "features": [[0.0] * 200] * 40, "start_frame": 0, "end_frame": 8}, "features"),
    ({"prompt": "x", "joints": [[[0.0] * 3] * 21] * 40, "frames_after": 8}, "joints"),
])
def test_bad_edits_name_the_field(server, body, field):
    status, answer = call(server, "POST", "/v1/edit", body)
    assert status == 422 and answer["field"] == field, answer


def test_sequences_and_long_motions_are_served(server, model):
    body = {"sequence": [{"prompt": "a person walks", "seconds": 6}, {"prompt": "a person sits", "seconds": 6}],
            "seed": 1, "steps": 3, "include_features": False}
    status, answer = call(server, "POST", "/v1/generate", body)
    assert status == 200 and answer["lengths"] == [240] and answer["seams"], answer
    status, answer = call(server, "POST", "/v1/generate", {"prompt": "a person runs", "seconds": 12, "steps": 3})
    want = model.generate("a person runs", 12.0, settings=GenerationSettings(steps=3))
    assert status == 200 and answer["lengths"] == [240]
    np.testing.assert_allclose(joints(answer), want.joints, atol=1e-5)


def test_batch_job_through_the_server_matches_the_local_one(server, reference_dir, tmp_path):
    listing = tmp_path / "moves.tsv"
    listing.write_text("2\ta person walks\t4\n1.2\ta person jumps\nlong\tbroken line\n")
    files = ["--checkpoints", str(reference_dir / "checkpoints"), "--clip", str(reference_dir / "clip" / "ViT-B-32.pt")]
    env = dict(os.environ, PYTHONPATH=str(ROOT), MOMASK_SERVER_TOKEN=TOKEN)
    outputs = {}
    for name, where in (("remote", ["--server", server.url]), ("local", files)):
        done = subprocess.run([sys.executable, "-m", "model_core", "batch", str(listing), "--out",
                               str(tmp_path / name), "--steps", "4", *where], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env=env)
        assert done.returncode == 1, done.stderr  # the broken line failed, the others were made
        outputs[name] = sorted((tmp_path / name).glob("*.npz"))
    assert [p.name for p in outputs["remote"]] == [p.name for p in outputs["local"]] and len(outputs["local"]) == 2
    for remote, local in zip(outputs["remote"], outputs["local"], strict=True):
        np.testing.assert_allclose(np.load(remote)["joints"], np.load(local)["joints"], atol=1e-5)


def test_remote_model_answers_like_the_local_one(server, model):
    """What Blender's jobs call: the same methods, the same motions, on either model."""
    from model_core.generation.requests import Segment
    from model_core.serve.client import RemoteModel

    remote, fast = RemoteModel(Client(server.url, TOKEN)), GenerationSettings(steps=3)
    segments = [Segment("a person walks", 60), Segment("a person turns around", 40)]
    got = remote.generate_sequence(segments, seed=4, variations=2, settings=fast)
    want = model.generate_sequence(segments, seed=4, variations=2, settings=fast)
    assert got.lengths == want.lengths == [100, 100] and got.seams == want.seams
    np.testing.assert_allclose(got.joints, want.joints, atol=1e-5)
    got = remote.generate(["a person waves"], 1.6, seed=8, settings=fast)
    np.testing.assert_allclose(got.joints, model.generate(["a person waves"], 1.6, seed=8, settings=fast).joints,
                               atol=1e-5)
    with pytest.raises(ServerError, match="prompt"):
        remote.generate([""], 1.0)
    with pytest.raises(ServerError, match="cannot reach"):
        RemoteModel(Client(server.url.replace(server.url.rsplit(":", 1)[1], "9"), TOKEN)).generate("x", 1.0)
    with pytest.raises(ServerError, match="http://host"):
        Client("file:///etc/passwd")


def test_every_sampling_setting_reaches_the_server(server, model):
    """Remote calls and remote batch items send all of GenerationSettings (a residual temperature too)."""
    from model_core.batch.items import parse_list
    from model_core.batch.runner import LocalProducer, RemoteProducer
    from model_core.serve.client import RemoteModel

    settings = GenerationSettings(steps=3, residual_temperature=0.05)
    want = model.generate(PROMPT, 1.6, seed=3, settings=settings)
    default = model.generate(PROMPT, 1.6, seed=3, settings=GenerationSettings(steps=3))
    assert not np.allclose(want.joints, default.joints, atol=1e-3)  # the setting changes the motion
    got = RemoteModel(Client(server.url, TOKEN)).generate(PROMPT, 1.6, seed=3, settings=settings)
    np.testing.assert_allclose(got.joints, want.joints, atol=1e-5)
    items, _ = parse_list("1.6\ta person walks\t3\n")
    remote = list(RemoteProducer(Client(server.url, TOKEN), settings)(items))
    local = list(LocalProducer(model, settings)(items))
    assert remote[0].error is None and local[0].error is None, (remote[0].error, local[0].error)
    np.testing.assert_allclose(remote[0].joints, local[0].joints, atol=1e-5)


def test_range_edits_take_constraints_through_the_server(server, model, reference_dir):
    """`RemoteModel.edit_range` takes constraints as `MoMask.edit_range` does; an extension takes none."""
    from model_core.control import Constraint
    from model_core.serve.client import RemoteModel

    source = np.load(reference_dir / "source_motion.npy")[:80].astype(np.float32)
    constraints = [Constraint(30, "left_wrist", (0.3, 1.2, 0.5))]
    settings = GenerationSettings(steps=3, residual_guidance=2.0)
    got = RemoteModel(Client(server.url, TOKEN)).edit_range(source, 20, 43, "a person kicks", seed=2,
                                                            settings=settings, constraints=constraints)
    want = model.edit_range(source, 20, 43, "a person kicks", seed=2, settings=settings, constraints=constraints)
    assert (got.frame_start, got.frame_end) == (want.frame_start, want.frame_end) == (20, 44)
    np.testing.assert_allclose(got.motion.joints, want.motion.joints, atol=1e-4)
    assert np.linalg.norm(got.motion.joints[0, 30, 20] - [0.3, 1.2, 0.5]) < 1e-3
    body = {"prompt": "x", "features": source.tolist(), "steps": 3}
    status, answer = call(server, "POST", "/v1/edit", {**body, "frames_after": 8, "constraints": []})
    assert status == 422 and answer["field"] == "constraints", answer
    outside = [{"frame": 70, "joint": "head", "position": [0.0, 1.6, 0.0]}]
    status, answer = call(server, "POST", "/v1/edit", {**body, "start_frame": 20, "end_frame": 43,
                                                       "constraints": outside})
    assert status == 422 and "frame 70" in answer["error"], answer


def test_a_server_that_cannot_start_or_refuses_the_token_is_named(server, reference_dir, tmp_path):
    """`serve.spawn`, what the add-on, the benchmark and these tests start servers with."""
    from model_core.serve import spawn

    with pytest.raises(ServerError, match="token"):  # up, but the token is wrong: no use waiting
        spawn.wait_healthy(server.process, Client(server.url, "wrong"), timeout=60)
    port = spawn.free_port()
    command = spawn.serve_command(sys.executable, tmp_path / "nothing", reference_dir / "clip" / "ViT-B-32.pt",
                                  port=port, device="cpu")
    with (tmp_path / "log").open("wb") as log:
        process = spawn.start(command, env=dict(os.environ, PYTHONPATH=str(ROOT)), log=log, cwd=ROOT)
        try:
            with pytest.raises(ServerError, match="exit code 2"):
                spawn.wait_healthy(process, Client(f"http://{spawn.HOST}:{port}"), timeout=120)
        finally:
            spawn.stop(process)
    assert process.returncode == 2 and "nothing" in (tmp_path / "log").read_text()
