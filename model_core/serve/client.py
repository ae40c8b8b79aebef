"""Calling a MoMask server: JSON over HTTP with the standard library only (no PyTorch, FastAPI or requests).

Blender's add-on and batch jobs use this. With a `progress` callback the request streams the
server's progress lines (`Accept: application/x-ndjson`); the callback is also called on the
server's heartbeats, so when it raises (the user cancelled) the connection is closed at once,
and the server drops the request.
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from ..errors import ModelError

STREAM_TYPE = "application/x-ndjson"  # a streamed answer: progress lines, then the answer (the server's too)
TOKEN_ENV = "MOMASK_SERVER_TOKEN"  # where the server and its clients find the token when no flag gives it


class ServerError(ModelError):
    """The server could not be reached, refused the request, or failed; the message says which."""

    def __init__(self, message: str, status: int = 0, field: str | None = None):
        super().__init__(message)
        self.status, self.field = status, field


def check_url(url: str) -> str:
    """The server's base URL without a trailing slash; only http and https are accepted."""
    parts = urllib.parse.urlsplit((url or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServerError(f"the server address must look like http://host:8790, got {url!r}")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class Client:
    """One server: its base URL and token. Methods return the server's JSON answers as dicts."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 600.0, read_timeout: float = 60.0):
        self.url, self.token = check_url(url), (token or None)
        self.timeout, self.read_timeout = float(timeout), float(read_timeout)

    def health(self, timeout: float = 10.0) -> dict[str, Any]:
        return self._call("GET", "/v1/health", None, None, timeout)

    def generate(self, body: dict[str, Any], progress: Callable[[str, float], None] | None = None) -> dict[str, Any]:
        return self._call("POST", "/v1/generate", body, progress, self.timeout)

    def edit(self, body: dict[str, Any], progress: Callable[[str, float], None] | None = None) -> dict[str, Any]:
        return self._call("POST", "/v1/edit", body, progress, self.timeout)

    # ----------------------------------------------------------------------------- transport

    def _call(self, method: str, path: str, body: dict | None, progress, timeout: float) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", STREAM_TYPE if progress else "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            # streamed answers send a line at least every second: a long silence means the server is gone
            with urllib.request.urlopen(request, timeout=self.read_timeout if progress else timeout) as answer:
                if progress and STREAM_TYPE in answer.headers.get("Content-Type", ""):
                    return _read_stream(answer, progress)
                return _json(answer.read())
        except urllib.error.HTTPError as err:
            raise _refusal(err) from None
        except (urllib.error.URLError, OSError) as err:  # refused, unreachable, reset, timed out
            reason = getattr(err, "reason", err)
            if isinstance(reason, socket.timeout | TimeoutError):
                reason = "no answer in time"
            raise ServerError(f"cannot reach the MoMask server at {self.url}: {reason}") from None


def _read_stream(answer, progress: Callable[[str, float], None]) -> dict[str, Any]:
    stage, fraction = "queued", 0.0
    for raw in answer:
        line = _json(raw)
        if "answer" in line:
            return line["answer"]
        if "error" in line:
            raise ServerError(f"the server refused the request: {line['error']}", int(line.get("status") or 0),
                              line.get("field"))
        if "stage" in line:
            stage, fraction = str(line["stage"]), float(line.get("fraction", fraction))
        progress(stage, fraction)  # on heartbeats too, so a cancel is noticed while queued
    raise ServerError("the server closed the connection before answering")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ServerError(f"the server's answer is not JSON: {raw[:120]!r}") from None
    if not isinstance(value, dict):
        raise ServerError("the server's answer is not a JSON object")
    return value


def _refusal(err: urllib.error.HTTPError) -> ServerError:
    try:
        payload = json.loads(err.read() or b"{}")
    except (ValueError, OSError):
        payload = {}
    message = payload.get("error") if isinstance(payload, dict) else None
    if err.code == 401:
        return ServerError("the server refused the token (401): check the server token", 401, "token")
    return ServerError(f"the server refused the request ({err.code}): {message or err.reason}", err.code,
                       payload.get("field") if isinstance(payload, dict) else None)


class RemoteModel:
    """A model on a server, called like `MoMask`: generate, generate_sequence, edit_range, extend.

    Answers come back as the same `Motion` and `Edited` the local model returns (tokens empty),
    so code written against the model runs unchanged with either. `progress` streams the
    server's stages; raising from it cancels the request on the server too.
    """

    def __init__(self, client: Client):
        self.client = client

    def generate(self, prompts, seconds=None, *, seed: int = 0, variations: int = 1, settings=None,
                 progress=None, constraints=None):
        body = {"prompts" if isinstance(prompts, list | tuple) else "prompt": prompts, "seconds": _plain(seconds),
                "seed": int(seed), "variations": int(variations), **_settings(settings), **_constraints(constraints)}
        return _motion(self.client.generate(body, progress))

    def generate_sequence(self, segments, *, seed: int = 0, variations: int = 1, settings=None, progress=None,
                          constraints=None):
        from ..settings import FPS

        rows = [{"prompt": s.prompt, "seconds": s.frames / FPS} for s in segments]
        body = {"sequence": rows, "seed": int(seed), "variations": int(variations), **_settings(settings),
                **_constraints(constraints)}
        return _motion(self.client.generate(body, progress))

    def edit_range(self, features, start_frame: int, end_frame: int, prompt: str, *, seed: int = 0, settings=None,
                   progress=None, constraints=None):
        body = {"prompt": prompt, "features": _rows(features), "start_frame": int(start_frame),
                "end_frame": int(end_frame), "seed": int(seed), **_settings(settings, edit=True),
                **_constraints(constraints)}
        return _edited(self.client.edit(body, progress))

    def extend(self, features, prompt: str, *, frames_before: int = 0, frames_after: int = 0, seed: int = 0,
               settings=None, progress=None):
        side = {"frames_before": int(frames_before)} if frames_before else {"frames_after": int(frames_after)}
        body = {"prompt": prompt, "features": _rows(features), **side, "seed": int(seed),
                **_settings(settings, edit=True)}
        return _edited(self.client.edit(body, progress))


def _settings(settings, edit: bool = False) -> dict[str, Any]:
    """Every field of the `GenerationSettings` (the request's fields have their names)."""
    from dataclasses import asdict

    from ..settings import EDIT_RESIDUAL_GUIDANCE, GenerationSettings

    if settings is None:
        settings = GenerationSettings(residual_guidance=EDIT_RESIDUAL_GUIDANCE) if edit else GenerationSettings()
    return {**asdict(settings), "include_features": True}


def _constraints(constraints) -> dict[str, Any]:
    """The request's `constraints` field (model_core.control's JSON form), or nothing."""
    if not constraints:
        return {}
    from ..control.constraints import to_json

    return {"constraints": to_json(constraints)}


def _plain(seconds):
    if seconds is None or isinstance(seconds, int | float):
        return seconds
    return [float(s) for s in seconds]


def _rows(features) -> list:
    import numpy as np

    return np.round(np.asarray(features, dtype=np.float64), 6).tolist()


def _motion(answer: dict[str, Any]):
    import numpy as np

    from ..generation.requests import Motion

    try:
        joints = np.asarray(answer["joints"], dtype=np.float32)
        features = np.asarray(answer.get("features") or np.zeros(joints.shape[:2] + (0,)), dtype=np.float32)
        lengths = [int(n) for n in answer["lengths"]]
        if joints.ndim != 4 or joints.shape[-1] != 3 or len(lengths) != len(joints):
            raise ValueError(f"joints of shape {joints.shape} for {len(lengths)} lengths")
        return Motion(joints=joints, features=features, tokens=np.zeros((len(joints), 0, 0), np.int64),
                      lengths=lengths, fps=int(answer["fps"]), seams=[int(s) for s in answer.get("seams", [])])
    except (KeyError, TypeError, ValueError) as err:
        raise ServerError(f"the server's answer is not a motion: {err}") from None


def _edited(answer: dict[str, Any]):
    from ..generation.requests import Edited

    try:
        return Edited(_motion(answer), int(answer["frame_start"]), int(answer["frame_end"]))
    except (KeyError, TypeError, ValueError) as err:
        raise ServerError(f"the server's answer is not an edit: {err}") from None
