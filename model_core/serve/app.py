"""The HTTP API, one FastAPI app for both ways of running it (one uvicorn process, or Ray Serve).

`create_app(service, token=...)` builds the routes around a *service*: anything with `info()`,
`async generate(ticket)` and `async edit(ticket)` (`local.LocalService`, or the Ray deployment).
Everything a client can get wrong is answered with a 4xx JSON `{"error": ..., "field": ...}`:
the token and the body size are checked before the body is read, the body by the pydantic
models of `schemas.py` before the model sees it. Bodies are JSON, never pickles.

With `Accept: application/x-ndjson` the model routes stream one JSON line per progress report
(`{"stage", "fraction"}`, also a heartbeat while queued) and end with `{"answer": ...}` or
`{"error": ...}`; a client that closes the connection cancels its request.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .client import STREAM_TYPE
from .engine import RequestError, Ticket
from .schemas import (
    FIELDS,
    MAX_BODY_BYTES,
    EditAnswer,
    EditRequest,
    ErrorAnswer,
    GenerateRequest,
    HealthAnswer,
    MotionAnswer,
)

API_PREFIX = "/v1/"
HEARTBEAT_S = 1.0
LOG = logging.getLogger("model_core.serve")
ERRORS = {400: {"model": ErrorAnswer}, 401: {"model": ErrorAnswer}, 413: {"model": ErrorAnswer},
          422: {"model": ErrorAnswer}}


def create_app(service, *, token: str | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The API around `service`; with a `token`, every /v1/ route needs `Authorization: Bearer <token>`."""
    from .. import __version__

    app = FastAPI(title="MoMask motion server", version=__version__,
                  description="Text to 3D human motion (MoMask). Joints are metres, Y up, 20 fps.")
    _install_error_answers(app)

    @app.get("/v1/health", response_model=HealthAnswer, responses=ERRORS)
    async def health() -> dict[str, Any]:
        """200 once the model is loaded: its names, the device, the version."""
        return {"status": "ok", "version": __version__, **service.info()}

    @app.post("/v1/generate", response_model=MotionAnswer, responses=ERRORS)
    async def generate(body: GenerateRequest, request: Request) -> Response:
        """Text to motion, as `python -m model_core generate` makes it (same arguments, same joints)."""
        return await _run(service.generate, Ticket(body), request)

    @app.post("/v1/edit", response_model=EditAnswer, responses=ERRORS)
    async def edit(body: EditRequest, request: Request) -> Response:
        """Regenerate a range of the motion sent, or extend it before or after."""
        return await _run(service.edit, Ticket(body), request)

    app.add_middleware(_BodyLimit, limit=max_body_bytes)
    app.add_middleware(_TokenCheck, token=token)  # added last, runs first: no body is read without the token
    return app


async def _run(run: Callable[[Ticket], Awaitable[None]], ticket: Ticket, request: Request) -> Response:
    if STREAM_TYPE in request.headers.get("accept", ""):
        return StreamingResponse(_stream(run, ticket), media_type=STREAM_TYPE)
    await run(ticket)
    if ticket.error is not None:
        return error_response(ticket.error.status, str(ticket.error), ticket.error.field)
    return Response(json_bytes(ticket.answer), media_type="application/json")


async def _stream(run: Callable[[Ticket], Awaitable[None]], ticket: Ticket) -> AsyncIterator[bytes]:
    """Progress lines while the ticket runs, then its answer; leaving early cancels the ticket."""
    loop = asyncio.get_running_loop()
    reports: asyncio.Queue[dict] = asyncio.Queue()

    def progress(stage: str, fraction: float) -> None:  # called from the model's thread
        try:
            loop.call_soon_threadsafe(reports.put_nowait, {"stage": stage, "fraction": round(fraction, 4)})
        except RuntimeError:  # the loop is closing
            pass

    ticket.progress = progress
    task = asyncio.ensure_future(run(ticket))
    try:
        yield _line({"stage": "queued", "fraction": 0.0})
        while not task.done() or not reports.empty():
            get = asyncio.ensure_future(reports.get())
            done, _ = await asyncio.wait({task, get}, timeout=HEARTBEAT_S, return_when=asyncio.FIRST_COMPLETED)
            if get in done:
                yield _line(get.result())
            else:
                get.cancel()
                if not done:
                    yield _line({"heartbeat": True})
        await task
        if ticket.error is not None:
            yield _line({"error": str(ticket.error), "field": ticket.error.field, "status": ticket.error.status})
        else:
            yield _line({"answer": ticket.answer})
    finally:
        if not task.done():
            ticket.cancelled.set()


def json_bytes(obj: dict) -> bytes:
    """JSON with NumPy arrays written directly, each float32 as its shortest exact decimal
    (orjson: ten times the standard encoder's speed on a motion, which matters once many
    requests share one model call)."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def _line(obj: dict) -> bytes:
    return json_bytes(obj) + b"\n"


# ----------------------------------------------------------------------------- errors


def error_response(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


def _install_error_answers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        status, message, field = describe_validation(err.errors())
        return error_response(status, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, err: StarletteHTTPException) -> JSONResponse:
        return error_response(err.status_code, str(err.detail), headers=getattr(err, "headers", None))

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, err: RequestError) -> JSONResponse:
        return error_response(err.status, str(err), err.field)

    @app.exception_handler(Exception)
    async def internal(_request: Request, err: Exception) -> JSONResponse:
        LOG.error("internal error", exc_info=err)
        return error_response(500, f"internal error: {type(err).__name__}")


def describe_validation(errors: list[dict]) -> tuple[int, str, str | None]:
    """(status, message, field) for FastAPI's validation errors: the first problem, named by its field."""
    if not errors:
        return 422, "invalid request", None
    first = errors[0]
    loc = [part for part in first.get("loc", ()) if part != "body"]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return 400, f"body: not valid JSON ({detail})".replace(" ()", ""), "body"
    if not loc:
        field, sep, _ = message.partition(": ")
        if sep and field in FIELDS:
            return 422, message, field
        if first.get("type") in ("model_attributes_type", "dict_type", "missing"):
            message = "expected a JSON object (sent with Content-Type: application/json)"
        return 422, f"body: {message}", "body"
    # the path to the value: field names and list positions (not pydantic's names for union members)
    path = ".".join(str(p) for k, p in enumerate(loc) if k == 0 or isinstance(p, int) or p in FIELDS)
    return 422, f"{path}: {message}", str(loc[0])


# ----------------------------------------------------------------------------- middleware (plain ASGI)


class _TokenCheck:
    """401 for /v1/ routes without the right bearer token, before anything else is read."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        if self.token and scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
                response = error_response(401, "missing or wrong token: send 'Authorization: Bearer <token>'",
                                          "Authorization", headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _BodyLimit:
    """413 for a body over `limit` bytes, whether it announces its length or not.

    An oversized body is still read (and dropped) up to `DRAIN_BYTES`, so that the client, still
    sending, gets the answer instead of a broken connection; past that the connection is cut."""

    DRAIN_BYTES = 64 * 1024 * 1024

    def __init__(self, app, limit: int):
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send, drain=declared.isdigit() and int(declared) <= self.DRAIN_BYTES)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, receive, send, drain=message.get("more_body", False), seen=size)
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send, *, drain: bool, seen: int = 0) -> None:
        while drain and seen <= self.DRAIN_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            seen += len(message.get("body", b""))
            drain = message.get("more_body", False)
        response = error_response(413, f"body: larger than the server's limit of {self.limit} bytes", "body")
        await response(scope, receive, send)
