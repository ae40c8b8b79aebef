"""Requests that arrive together become one call, in one process (what `@serve.batch` does on Ray).

Calls run one at a time in a worker thread, so the event loop keeps answering while the model
works; whatever arrives meanwhile waits in the queue and forms the next call. A lone request
waits at most `wait_s` for company.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    """`await submit(item)` returns once `run(batch)` (in a thread) has handled a batch holding it."""

    def __init__(self, run: Callable[[list[T]], None], *, max_batch: int, wait_s: float = 0.002):
        self._run, self.max_batch, self.wait_s = run, max(1, int(max_batch)), float(wait_s)
        self._queue: asyncio.Queue[tuple[T, asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None

    async def submit(self, item: T) -> None:
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._serve())
        done = asyncio.get_running_loop().create_future()
        await self._queue.put((item, done))
        await asyncio.shield(done)  # a client that leaves must not cancel the others' call

    @property
    def waiting(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    async def _serve(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            deadline = asyncio.get_running_loop().time() + self.wait_s
            while len(batch) < self.max_batch:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except TimeoutError:
                    break
            try:
                await asyncio.to_thread(self._run, [item for item, _ in batch])
            except Exception as err:  # noqa: BLE001 (run fills each item's own error; this is a bug)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(err)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
