"""Run a batch job: skip what is made, make the rest in model calls (here or on a server), keep going past failures.

A *producer* turns items into outcomes as they finish: `LocalProducer` puts many items into each
model call (sorted by length, so little is padding), `RemoteProducer` keeps several requests in
flight to a server, which batches them itself. The runner writes each result atomically,
lists what failed in `failed.tsv` (the list's own lines, so it can be run again), and draws a
progress bar.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..inputs.paths import remove_leftovers, write_bytes, write_npz
from ..settings import MAX_FRAMES, GenerationSettings
from .items import BadLine, Item, npz_arrays

OUTPUT = "batch output file"

FAILED_LIST = "failed.tsv"


@dataclass
class Outcome:
    item: Item
    joints: np.ndarray | None = None     # (frames, 22, 3)
    features: np.ndarray | None = None   # (frames, 263)
    fps: int = 20
    error: str | None = None


Producer = Callable[[Sequence[Item]], Iterator[Outcome]]


@dataclass
class Summary:
    items: int = 0
    made: int = 0
    skipped: int = 0
    failed: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, why)
    seconds: float = 0.0


class LocalProducer:
    """Items through a loaded model, `batch_size` of them per call; a failing call is retried item by item."""

    def __init__(self, model, settings: GenerationSettings, batch_size: int = 16):
        self.model, self.settings, self.batch_size = model, settings, max(1, int(batch_size))

    def __call__(self, items: Sequence[Item]) -> Iterator[Outcome]:
        short = sorted((i for i in items if i.frames is None or i.frames <= MAX_FRAMES), key=lambda i: i.frames or 0)
        for start in range(0, len(short), self.batch_size):
            yield from self._together(short[start:start + self.batch_size])
        for item in items:
            if item.frames is not None and item.frames > MAX_FRAMES:  # window by window, alone
                yield self._guarded(item, lambda i=item: [self.model.generate(
                    i.prompt, i.seconds, seed=i.seed, settings=self.settings)])

    def _together(self, chunk: list[Item]) -> Iterator[Outcome]:
        from ..generation.batched import Sample, generate_batched

        try:
            motions = generate_batched(self.model, [Sample(i.prompt, i.frames, i.seed) for i in chunk], self.settings)
        except Exception as err:  # noqa: BLE001 (one bad item must not fail its neighbours)
            if len(chunk) == 1:
                yield Outcome(chunk[0], error=_reason(err))
            else:
                for item in chunk:
                    yield from self._together([item])
            return
        for item, motion in zip(chunk, motions, strict=True):
            yield _outcome(item, motion)

    def _guarded(self, item: Item, call: Callable[[], list]) -> Outcome:
        try:
            return _outcome(item, call()[0])
        except Exception as err:  # noqa: BLE001
            return Outcome(item, error=_reason(err))


class RemoteProducer:
    """Items as requests to a server (`client.Client`, called as `client.RemoteModel`), `concurrency` in flight
    so it can batch them."""

    def __init__(self, client, settings: GenerationSettings, concurrency: int = 8):
        from ..serve.client import RemoteModel

        self.model, self.settings, self.concurrency = RemoteModel(client), settings, max(1, int(concurrency))

    def __call__(self, items: Sequence[Item]) -> Iterator[Outcome]:
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="momask-batch")
        try:
            futures = {pool.submit(self._one, item): item for item in items}
            for future in as_completed(futures):
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _one(self, item: Item) -> Outcome:
        try:
            motion = self.model.generate(item.prompt, item.seconds, seed=item.seed, settings=self.settings)
            return _outcome(item, motion)
        except Exception as err:  # noqa: BLE001 (the server's refusal, or a broken answer, fails this item only)
            return Outcome(item, error=_reason(err))


def run_batch(items: Sequence[Item], out: Path, produce: Producer, settings: GenerationSettings, *,
              bvh: bool = False, bad_lines: Sequence[BadLine] = (), progress=None) -> Summary:
    """Make every item not already in `out`; returns what was made, skipped and failed."""
    from ..motion.bvh import bvh_text

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    remove_leftovers(out)
    summary = Summary(items=len(items) + len(bad_lines))
    summary.failed += [(b.line, b.text, b.reason) for b in bad_lines]
    pending = []
    for item in items:
        npz = out / f"{item.name(settings)}.npz"
        if npz.is_file() and (not bvh or _bvh_from_npz(npz)):
            summary.skipped += 1
        else:
            pending.append(item)
    bar = progress or ProgressBar(summary.items)
    bar.update(summary)
    for outcome in produce(pending):
        item, stem = outcome.item, out / outcome.item.name(settings)
        if outcome.error is None and not np.isfinite(outcome.joints).all():
            outcome.error = "the model produced NaN or infinite joints"
        if outcome.error is not None:
            summary.failed.append((item.line, _line(item), outcome.error))
        else:
            if bvh:  # the .bvh first: the .npz marks the item done
                write_bytes(stem.with_suffix(".bvh"), bvh_text(outcome.joints, outcome.fps).encode("ascii"), OUTPUT)
            write_npz(stem.with_suffix(".npz"), npz_arrays(item, outcome.joints, outcome.features, outcome.fps,
                                                           settings), OUTPUT)
            summary.made += 1
        bar.update(summary)
    bar.finish(summary)
    _write_failed(out, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _bvh_from_npz(npz: Path) -> bool:
    """A finished item asked for again with --bvh: write its .bvh from the saved joints."""
    from ..motion.bvh import bvh_text

    target = npz.with_suffix(".bvh")
    if target.is_file():
        return True
    try:
        with np.load(npz, allow_pickle=False) as data:
            write_bytes(target, bvh_text(data["joints"], float(data["fps"])).encode("ascii"), OUTPUT)
        return True
    except (OSError, ValueError, KeyError, ModelError):
        return False  # unreadable: make the item again


def _write_failed(out: Path, summary: Summary) -> None:
    path = out / FAILED_LIST
    if not summary.failed:
        path.unlink(missing_ok=True)
        return
    lines = ["# items that failed: fix or keep them, then run this file again (finished items are skipped)"]
    for line, text, why in sorted(summary.failed):
        lines += [f"# line {line}: {why}", text]
    write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"), "list of failed items")


def _line(item: Item) -> str:
    seconds = "auto" if item.seconds is None else f"{item.seconds:g}"
    return f"{seconds}\t{item.prompt}\t{item.seed}"


def _outcome(item: Item, motion) -> Outcome:
    frames = motion.lengths[0]
    return Outcome(item, motion.joints[0, :frames], motion.features[0, :frames], motion.fps)


def _reason(err: Exception) -> str:
    if isinstance(err, ModelError):
        return str(err)
    return f"{type(err).__name__}: {err}"


class ProgressBar:
    """One status line on stderr, redrawn in place on a terminal, every few seconds in a log."""

    def __init__(self, total: int, stream=None, width: int = 30, every_s: float = 5.0):
        self.total, self.stream, self.width, self.every_s = total, stream or sys.stderr, width, every_s
        self.started = self.last = time.perf_counter()
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def text(self, summary: Summary) -> str:
        finished = summary.made + summary.skipped + len(summary.failed)
        share = finished / self.total if self.total else 1.0
        filled = int(round(self.width * share))
        elapsed = time.perf_counter() - self.started
        rate = summary.made / elapsed if elapsed > 0 else 0.0
        left = (self.total - finished) / rate if rate > 0 else float("nan")
        eta = f", {left:.0f} s left" if np.isfinite(left) and finished < self.total else ""
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {finished}/{self.total} "
                f"({summary.made} made, {summary.skipped} skipped, {len(summary.failed)} failed; "
                f"{rate:.2f}/s{eta})")

    def update(self, summary: Summary) -> None:
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r" + self.text(summary))
            self.stream.flush()
        elif now - self.last >= self.every_s:
            self.stream.write(self.text(summary) + "\n")
            self.stream.flush()
            self.last = now

    def finish(self, summary: Summary) -> None:
        self.stream.write(("\r" if self.tty else "") + self.text(summary) + "\n")
        self.stream.flush()


def summary_json(summary: Summary, out: Path) -> dict:
    return {"out": str(out), "items": summary.items, "made": summary.made, "skipped": summary.skipped,
            "failed": len(summary.failed), "failed_list": str(out / FAILED_LIST) if summary.failed else None,
            "seconds": round(summary.seconds, 3)}
