"""The long-lived parts a request needs (settings, store, storage, Prefect), built once per app."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.settings import Settings
from core.storage import Storage
from gateway.db import Database
from gateway.orchestrator import Orchestrator


@dataclass
class Services:
    settings: Settings
    database: Database
    storage: Storage
    orchestrator: Orchestrator
    # Called once a job is recorded: the app points it at its dispatcher (gateway/jobs/dispatch.py).
    wake_dispatcher: Callable[[], None] = field(default=lambda: None)

    def ray_alive(self) -> bool:
        """The Ray GCS accepts connections (the gateway is no Ray driver)."""
        host, _, port = self.settings.ray_cluster.rpartition(":")
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


def db_session(services: ServicesDep) -> Iterator[Session]:
    with services.database.session() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session)]
