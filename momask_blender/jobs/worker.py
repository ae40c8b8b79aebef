"""Long work off Blender's main thread: a job's states, its worker thread and the messages it sends.

Pure Python (no bpy), so the tests drive it without Blender. `modal.py` is the Blender side: it
starts a `Worker`, and on each timer event `drain()`s the worker's queue into a `JobState` that
the panel and the status bar show.

    idle ─► loading ─► running ─► applying ─► done
              │           │           └─────► failed
              └───────────┴─► failed / cancelled

`loading` is the model's first load (the stage named `LOADING`); every other stage is `running`.
`applying` is the main thread writing the result into the scene. A finished job (done, failed,
cancelled) may start again.

The worker runs `compute(progress)` where `progress` is a `Reporter`: `progress(stage, fraction)`
queues a `Progress` message and, once `cancel()` was called, raises `JobCancelled` instead, so a
compute function that reports its progress stops at its next report (the model passes the
callback's exception on, so a job's own callback that calls `progress` stops it too); `progress.cancel_event` is the
flag for code that stops on its own (downloads, pip). Whatever the compute function raises
becomes one `Failed` message: the types in `expected` are user-facing problems (their text is
the message), anything else is a bug and its traceback goes to the console.
"""
from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

IDLE, LOADING, RUNNING, APPLYING, DONE, FAILED, CANCELLED = (
    "idle", "loading", "running", "applying", "done", "failed", "cancelled")
STATES = (IDLE, LOADING, RUNNING, APPLYING, DONE, FAILED, CANCELLED)
FINISHED_STATES = (DONE, FAILED, CANCELLED)
ACTIVE_STATES = (LOADING, RUNNING, APPLYING)
LOADING_STAGE = "loading model"

_START = (LOADING, RUNNING, FAILED)  # a new job loads, runs, or fails before it could start
TRANSITIONS: dict[str, tuple[str, ...]] = {
    IDLE: _START,
    LOADING: (RUNNING, APPLYING, FAILED, CANCELLED),
    RUNNING: (LOADING, APPLYING, FAILED, CANCELLED),
    APPLYING: (DONE, FAILED),
    DONE: _START,
    FAILED: _START,
    CANCELLED: _START,
}

ProgressFn = Callable[[str, float], None]


class JobCancelled(Exception):
    """Raised inside the worker by `progress()` once the job was asked to stop."""


class TransitionError(RuntimeError):
    """A state change the state machine does not allow (a bug in the caller)."""


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Progress:
    stage: str
    fraction: float  # 0..1 of the whole job


@dataclass(frozen=True)
class Finished:
    result: Any


@dataclass(frozen=True)
class Failed:
    message: str
    internal: bool = False  # a bug rather than a user-facing problem


@dataclass(frozen=True)
class Stopped:
    """The worker noticed the cancel flag and stopped; nothing was produced."""


Message = Progress | Finished | Failed | Stopped


# ----------------------------------------------------------------------------- state


@dataclass
class JobState:
    """What the UI shows about one job. Changed only on the main thread."""

    label: str = "MoMask"
    state: str = IDLE
    stage: str = ""
    fraction: float = 0.0
    message: str = ""
    cancel_requested: bool = False
    started: float = field(default_factory=time.monotonic)
    result: Any = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def to(self, state: str) -> None:
        if state not in TRANSITIONS.get(self.state, ()):
            raise TransitionError(f"a job cannot go from {self.state} to {state}")
        self.state = state

    def start(self, label: str | None = None) -> None:
        """A new run: back to the first stage (from idle or a finished run)."""
        self.to(RUNNING)
        if label is not None:
            self.label = label
        self.stage, self.fraction, self.message, self.result = "", 0.0, "", None
        self.cancel_requested = False
        self.started = time.monotonic()

    def handle(self, msg: Message) -> None:
        """Fold one worker message into the state (a no-op once the job has finished)."""
        if self.finished or self.state == APPLYING:
            return
        if isinstance(msg, Progress):
            wanted = LOADING if msg.stage == LOADING_STAGE else RUNNING
            if wanted != self.state:
                self.to(wanted)
            self.stage = msg.stage
            self.fraction = min(max(float(msg.fraction), self.fraction), 1.0)  # never goes back
        elif isinstance(msg, Finished):
            self.to(APPLYING)
            self.stage, self.result = "applying", msg.result
        elif isinstance(msg, Failed):
            self.to(FAILED)
            self.message = msg.message
        elif isinstance(msg, Stopped):
            self.to(CANCELLED)
            self.message = f"{self.label} cancelled"

    def applied(self, message: str) -> None:
        self.to(DONE)
        self.fraction, self.stage, self.message, self.result = 1.0, "", message, None

    def apply_failed(self, message: str) -> None:
        self.to(FAILED)
        self.message, self.result = message, None

    def fail(self, message: str) -> None:
        """The job could not start (bad input found on the main thread)."""
        self.to(FAILED)
        self.message = message

    def elapsed(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started

    def status_text(self, now: float | None = None) -> str:
        """One line for Blender's status bar, e.g. 'MoMask: base tokens 42% — Esc to cancel'."""
        if self.state == LOADING:
            return f"{self.label}: loading model… {self.elapsed(now):.0f} s (Esc to cancel)"
        if self.cancel_requested and self.active:
            return f"{self.label}: cancelling…"
        if self.state == RUNNING:
            stage = self.stage or "starting"
            return f"{self.label}: {stage} {self.fraction:.0%} (Esc to cancel)"
        if self.state == APPLYING:
            return f"{self.label}: writing keyframes…"
        return self.message


def drain(q: queue.Queue, state: JobState, limit: int = 1000) -> list[Message]:
    """Fold every queued message (at most `limit`) into `state` without blocking; return them."""
    out: list[Message] = []
    for _ in range(limit):
        try:
            msg = q.get_nowait()
        except queue.Empty:
            break
        state.handle(msg)
        out.append(msg)
    return out


# ----------------------------------------------------------------------------- worker


class Reporter:
    """The `progress(stage, fraction)` a compute function gets, with the job's cancel flag.

    Calling it queues a `Progress` message, or raises `JobCancelled` once the job was asked to
    stop. Code that stops on its own flag (the downloader, pip) gets `cancel_event` and reports
    through `note`, which never raises.
    """

    def __init__(self, sink: Callable[[Message], None] | None = None, cancel_event: threading.Event | None = None):
        self.sink = sink
        self.cancel_event = cancel_event or threading.Event()

    def __call__(self, stage: str, fraction: float) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled(stage)
        self.note(stage, fraction)

    def note(self, stage: str, fraction: float) -> None:
        if self.sink is not None:
            self.sink(Progress(stage, fraction))

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class Worker:
    """Runs `compute(progress)` in a daemon thread; results and progress come back through `queue`.

    The worker never touches bpy: `compute` gets plain data prepared on the main thread. The last
    message is always exactly one of `Finished`, `Failed` or `Stopped`.
    """

    def __init__(self, compute: Callable[[Reporter], Any], *, expected: tuple[type[BaseException], ...] = (),
                 name: str = "momask-job"):
        self.compute = compute
        self.expected = expected
        self.queue: queue.Queue[Message] = queue.Queue()
        self.cancel_event = threading.Event()
        self.progress = Reporter(self.queue.put, self.cancel_event)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Worker:
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run(self) -> None:
        self.queue.put(outcome(self.compute, self.progress, self.expected))


def outcome(compute: Callable[[Reporter], Any], progress: Reporter,
            expected: tuple[type[BaseException], ...] = ()) -> Finished | Failed | Stopped:
    """Run `compute(progress)` and say how it ended (the worker's and the synchronous path's one step)."""
    try:
        result = compute(progress)
    except JobCancelled:
        return Stopped()
    except Exception as err:  # noqa: BLE001 - every failure becomes one message, none escapes the thread
        if progress.cancelled:
            return Stopped()  # the computation stopped its own way (model_core.Cancelled, DownloadCancelled...)
        if expected and isinstance(err, expected):
            return Failed(str(err))
        traceback.print_exc()
        return Failed(f"internal error, please report it: {type(err).__name__}: {err}", internal=True)
    if progress.cancelled:
        return Stopped()  # asked to stop after the last report: drop the result
    return Finished(result)


def run_sync(compute: Callable[[Reporter], Any], *, expected: tuple[type[BaseException], ...] = (),
             on_progress: ProgressFn | None = None) -> Finished | Failed | Stopped:
    """The same job on the calling thread (scripts, `bpy.app.background`): progress goes to `on_progress`."""

    def sink(msg: Message) -> None:
        if on_progress is not None and isinstance(msg, Progress):
            on_progress(msg.stage, msg.fraction)

    return outcome(compute, Reporter(sink), expected)


def scaled(progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """A progress callback for one part of a job that fills [start, end] of the whole bar."""
    span = end - start

    def report(stage: str, fraction: float) -> None:
        progress(stage, start + span * min(max(float(fraction), 0.0), 1.0))

    return report


def bytes_progress(progress: ProgressFn, stage: str) -> Callable[[int, int | None], None]:
    """Adapt `progress(done, total)` of the downloader and installers to `progress(stage, fraction)`."""

    def report(done: int, total: int | None) -> None:
        if total:
            progress(f"{stage} {done / 2**20:.0f}/{total / 2**20:.0f} MB", done / total)
        else:
            progress(f"{stage} {done / 2**20:.0f} MB", 0.0)

    return report
