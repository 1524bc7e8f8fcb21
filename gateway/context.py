"""The long-lived parts a request needs (settings, store, storage, Prefect), built once per app."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from core.settings import Settings
from core.storage import Storage
from gateway.db import Database
from gateway.orchestrator import Orchestrator
from gateway.prefect_api.relay import PrefectRelay
from gateway.read_cache import ReadCache


@dataclass
class Services:
    settings: Settings
    database: Database
    storage: Storage
    orchestrator: Orchestrator
    # Called once a job is recorded: the app points it at its dispatcher (gateway/jobs/dispatch.py).
    wake_dispatcher: Callable[[], None] = field(default=lambda: None)
    reads: ReadCache = field(default_factory=ReadCache)
    # The Prefect API of running programs (gateway/prefect_api/); None where no Prefect server is behind.
    prefect_relay: PrefectRelay | None = None

    def ray_alive(self) -> bool:
        """The Ray GCS accepts connections (the gateway is no Ray driver)."""
        host, _, port = self.settings.ray_cluster.rpartition(":")
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True


# Both async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a hop that costs
# more than they do. Opening a session does no I/O; closing it (a rollback) does, in the pool.
async def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


async def db_session(services: ServicesDep) -> AsyncIterator[Session]:
    session = services.database.session()
    try:
        yield session
    finally:
        if session.in_transaction():  # else it never touched the database: nothing to give back
            await run_in_threadpool(session.close)


DbSession = Annotated[Session, Depends(db_session)]
