"""The model behind the routes: requests in, JSON-ready answers out, compatible requests in one call.

No HTTP here: `app.py` turns requests into `Ticket`s, a batcher (ours in one process, Ray
Serve's `@serve.batch` on Ray) hands lists of them to `Engine.generate`, and each ticket gets
its own answer or error. Requests share a model call when their sampling settings agree and
their motions fit one call; a sequence, a long motion or directed generation runs alone. One
bad request in a shared call never fails the others: the call is retried request by request.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelError
from ..settings import MAX_FRAMES, SERVER_MAX_SAMPLES
from .schemas import EditRequest, GenerateRequest

LOG = logging.getLogger("model_core.serve")


class RequestError(Exception):
    """A request the model cannot serve, with the field it is about; answered as a 4xx."""

    def __init__(self, message: str, field: str | None = None, status: int = 422):
        super().__init__(message)
        self.field, self.status = field, status


class Cancelled(RequestError):
    def __init__(self):
        super().__init__("the client went away", status=499)


@dataclass(eq=False)
class Ticket:
    """One request in flight. `progress(stage, fraction)` may be called from the model's thread;
    `cancelled` is set when the client is gone."""
    request: GenerateRequest | EditRequest
    progress: Callable[[str, float], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, Any] | None = None
    error: RequestError | None = None

    def report(self, stage: str, fraction: float) -> None:
        if self.progress is not None and not self.cancelled.is_set():
            self.progress(stage, fraction)


class Engine:
    """A loaded model, used by one call at a time (calls are batches: that is where the speed is)."""

    def __init__(self, model, *, max_batch_samples: int = SERVER_MAX_SAMPLES):
        self.model = model
        self.max_batch_samples = max(1, int(max_batch_samples))
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "model_calls": 0, "cancelled": 0, "failed": 0}

    def info(self) -> dict[str, Any]:
        folders = self.model.folders
        models = {"dataset": folders.dataset, "rvq": folders.rvq.name,
                  "mask_transformer": folders.mask_transformer.name,
                  "residual_transformer": folders.residual_transformer.name,
                  "length_estimator": folders.length_estimator.parent.parent.name}
        return {"models": models, "device": str(self.model.device), "stats": dict(self.stats),
                "replica": f"{socket.gethostname()}:{os.getpid()}"}

    # ----------------------------------------------------------------------------- generate

    def generate(self, tickets: list[Ticket]) -> None:
        """Answer every ticket (its `answer` or `error`), sharing model calls where they can."""
        try:
            self._generate(tickets)
        finally:
            self._count(tickets)

    def _generate(self, tickets: list[Ticket]) -> None:
        alone, groups = [], {}
        for ticket in tickets:
            if ticket.cancelled.is_set():
                ticket.error = Cancelled()
            elif _batchable(ticket.request):
                groups.setdefault(ticket.request.settings(), []).append(ticket)
            else:
                alone.append(ticket)
        for group in groups.values():
            for call in _pack(group, self.max_batch_samples):
                self._shared_call(call)
        for ticket in alone:
            self._answer(ticket, lambda t=ticket: self._generate_alone(t))

    def _shared_call(self, tickets: list[Ticket]) -> None:
        from ..generation.batched import Sample, generate_batched
        from ..generation.requests import seconds_to_frames, stack_motions

        samples, counts = [], []
        for ticket in tickets:
            request = ticket.request
            for prompt, seconds in zip(request.prompt_list, request.seconds_list(), strict=True):
                frames = None if seconds is None else seconds_to_frames(seconds)
                samples += [Sample(prompt, frames, request.seed + k) for k in range(request.variations)]
            counts.append(len(request.prompt_list) * request.variations)

        def run() -> list:
            motions = self._locked(lambda: generate_batched(self.model, samples, tickets[0].request.settings(),
                                                            _fan_out(tickets)))
            start, answers = 0, []
            for ticket, count in zip(tickets, counts, strict=True):
                answers.append(motion_answer(stack_motions(motions[start:start + count]),
                                             ticket.request.include_features))
                start += count
            return answers

        try:
            answers = run()
        except Exception as err:  # noqa: BLE001 (every ticket learns it; the server lives on)
            if isinstance(err, ModelError) and len(tickets) > 1:
                for ticket in tickets:  # find the one that failed; the others still get their motion
                    self._shared_call([ticket])
                return
            for ticket in tickets:
                ticket.error = _as_request_error(err)
            return
        for ticket, answer in zip(tickets, answers, strict=True):
            ticket.answer = answer

    def _generate_alone(self, ticket: Ticket) -> dict[str, Any]:
        """A sequence, a motion past one call, or directed generation: the model's own entry points."""
        from ..generation.requests import Segment, seconds_to_frames
        from ..generation.timeline import generate_sequence

        request, progress = ticket.request, _fan_out([ticket])
        settings = request.settings()
        constraints = parse_constraints(request.constraints)
        if request.sequence is not None:
            segments = [Segment(row.prompt, seconds_to_frames(row.seconds)) for row in request.sequence]
            motion = self._locked(lambda: generate_sequence(self.model, segments, seed=request.seed,
                                                            variations=request.variations, settings=settings,
                                                            progress=progress, constraints=constraints))
        else:
            seconds = request.seconds
            motion = self._locked(lambda: self.model.generate(request.prompt_list, seconds, seed=request.seed,
                                                              variations=request.variations, settings=settings,
                                                              progress=progress, constraints=constraints))
        return motion_answer(motion, request.include_features)

    # ----------------------------------------------------------------------------- edit

    def edit(self, ticket: Ticket) -> None:
        try:
            self._answer(ticket, lambda: self._edit(ticket))
        finally:
            self._count([ticket])

    def _edit(self, ticket: Ticket) -> dict[str, Any]:
        from ..generation import timeline
        from ..motion import joints_to_features

        request: EditRequest = ticket.request
        if request.joints is not None:
            joints = _array(request.joints, "joints", (None, self.model.joints_num, 3))
            try:
                features, _ = joints_to_features(joints.astype(np.float32))
            except ModelError as err:
                raise RequestError(str(err), "joints") from None
        else:
            features = _array(request.features, "features", (None, self.model.feature_dim))
        progress, settings = _fan_out([ticket]), request.settings()
        if request.start_frame is not None:
            frames = features.shape[0] - features.shape[0] % self.model.frames_per_token
            if request.end_frame >= frames:
                raise RequestError(f"end_frame {request.end_frame} is past the motion's last whole-token frame "
                                   f"{frames - 1}", "end_frame")
            constraints = parse_constraints(request.constraints)
            edited = self._locked(lambda: timeline.edit_range(
                self.model, features, request.start_frame, request.end_frame, request.prompt, seed=request.seed,
                settings=settings, progress=progress, constraints=constraints))
        else:
            sides = {"frames_before": request.frames_before or 0, "frames_after": request.frames_after or 0}
            edited = self._locked(lambda: timeline.extend(self.model, features, request.prompt, seed=request.seed,
                                                          settings=settings, progress=progress, **sides))
        answer = motion_answer(edited.motion, request.include_features)
        answer.update(frame_start=edited.frame_start, frame_end=edited.frame_end)
        return answer

    # ----------------------------------------------------------------------------- helpers

    def _locked(self, call: Callable[[], Any]) -> Any:
        with self._lock:
            self.stats["model_calls"] += 1
            return call()

    def _count(self, tickets: list[Ticket]) -> None:
        with self._lock:
            self.stats["requests"] += len(tickets)
            self.stats["cancelled"] += sum(isinstance(t.error, Cancelled) for t in tickets)
            self.stats["failed"] += sum(t.error is not None and not isinstance(t.error, Cancelled) for t in tickets)

    @staticmethod
    def _answer(ticket: Ticket, call: Callable[[], dict[str, Any]]) -> None:
        if ticket.cancelled.is_set():
            ticket.error = Cancelled()
            return
        raise_into(ticket, call)


def raise_into(ticket: Ticket, call: Callable[[], dict[str, Any]]) -> None:
    """Run `call` for one ticket; what it raises becomes the ticket's error."""
    try:
        ticket.answer = call()
    except Exception as err:  # noqa: BLE001 (turned into the ticket's error, never into a dead server)
        ticket.error = _as_request_error(err)


def _as_request_error(err: Exception) -> RequestError:
    from ..generation.requests import Cancelled as ModelCancelled

    if isinstance(err, RequestError):
        return err
    if isinstance(err, ModelCancelled):
        return Cancelled()
    if isinstance(err, ModelError):
        return RequestError(str(err))
    LOG.exception("request failed")  # called inside `except`: the log gets the traceback
    return RequestError(f"internal error: {type(err).__name__}", status=500)


def parse_constraints(items: list[dict[str, Any]] | None) -> list:
    """The request's constraints as the model core reads them (none: an empty list); a bad one is a 422
    naming the field."""
    from ..control import parse_constraints as parse

    if items is None:
        return []
    try:
        return parse({"constraints": items})
    except ModelError as err:
        raise RequestError(str(err), "constraints") from None


def _batchable(request: GenerateRequest) -> bool:
    from ..generation.requests import seconds_to_frames

    if request.sequence is not None or request.constraints is not None:
        return False
    return all(s is None or seconds_to_frames(s) <= MAX_FRAMES for s in request.seconds_list())


def _pack(tickets: list[Ticket], most: int) -> list[list[Ticket]]:
    """Tickets in arrival order, cut into calls of at most `most` samples (a bigger request alone)."""
    calls, current, size = [], [], 0
    for ticket in tickets:
        count = len(ticket.request.prompt_list) * ticket.request.variations
        if current and size + count > most:
            calls.append(current)
            current, size = [], 0
        current.append(ticket)
        size += count
    return calls + [current] if current else calls


def _fan_out(tickets: list[Ticket]) -> Callable[[str, float], None]:
    """One call's progress, told to each of its tickets; the call stops once all of them are gone."""
    from ..generation.requests import Cancelled as ModelCancelled

    def progress(stage: str, fraction: float) -> None:
        if all(t.cancelled.is_set() for t in tickets):
            raise ModelCancelled()
        for ticket in tickets:
            ticket.report(stage, fraction)

    return progress


def _array(values: list, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except ValueError:
        raise RequestError(f"rows of different lengths; expected shape {_shape_text(shape)}", name) from None
    if array.ndim != len(shape) or any(want is not None and got != want
                                       for got, want in zip(array.shape, shape, strict=True)):
        raise RequestError(f"expected shape {_shape_text(shape)}, got {array.shape}", name)
    return array


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("frames" if n is None else str(n) for n in shape) + ")"


def motion_answer(motion, include_features: bool = True) -> dict[str, Any]:
    """A Motion cut to its longest sample, as float32 arrays for the JSON encoder (`app.json_bytes`)."""
    frames = max(motion.lengths)
    answer = {"joints": np.ascontiguousarray(motion.joints[:, :frames], dtype=np.float32),
              "lengths": [int(n) for n in motion.lengths], "fps": int(motion.fps),
              "seams": [int(s) for s in motion.seams]}
    if include_features:
        answer["features"] = np.ascontiguousarray(motion.features[:, :frames], dtype=np.float32)
    return answer
