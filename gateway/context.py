"""The long-lived parts a request needs (storage, Prefect, settings), built once per app."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from blocks.storage import Storage
from gateway.orchestrator import Orchestrator
from gateway.settings import Settings


@dataclass
class Services:
    settings: Settings
    storage: Storage
    orchestrator: Orchestrator

    def ray_alive(self) -> bool:
        """The Ray GCS accepts connections (the gateway is no Ray driver)."""
        host, _, port = self.settings.ray_cluster.rpartition(":")
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]
