"""One process: the app on uvicorn, requests batched by our `Batcher`, the model in a worker thread."""
from __future__ import annotations

import asyncio
from typing import Any

from ..settings import SERVER_BATCH
from .batcher import Batcher
from .engine import Engine, RequestError, Ticket

MAX_WAITING = 256  # requests held while the model is busy; past this the server says it is busy


class LocalService:
    """The service `create_app` calls, for one process: generate requests are batched, edits run alone."""

    def __init__(self, engine: Engine, *, max_batch: int = SERVER_BATCH, wait_s: float = 0.002):
        self.engine = engine
        self.batcher: Batcher[Ticket] = Batcher(engine.generate, max_batch=max_batch, wait_s=wait_s)

    def info(self) -> dict[str, Any]:
        return {**self.engine.info(), "engine": "uvicorn", "limits": {"max_batch": self.batcher.max_batch}}

    async def generate(self, ticket: Ticket) -> None:
        if self.batcher.waiting >= MAX_WAITING:
            raise RequestError(f"the server is busy ({self.batcher.waiting} requests waiting): try again shortly",
                               status=503)
        await self.batcher.submit(ticket)

    async def edit(self, ticket: Ticket) -> None:
        await asyncio.to_thread(self.engine.edit, ticket)


def serve(engine: Engine, host: str, port: int, token: str | None, *, max_batch: int = SERVER_BATCH,
          log_level: str = "info") -> None:
    """Run the API until interrupted (Ctrl-C or SIGTERM end it cleanly)."""
    import uvicorn

    from .app import create_app

    app = create_app(LocalService(engine, max_batch=max_batch), token=token)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
