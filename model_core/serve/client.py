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

STREAM_TYPE = "application/x-ndjson"


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
