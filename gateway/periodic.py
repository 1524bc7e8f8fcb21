"""A gateway's background work: a daemon thread that does one pass at start, then one every
`every` seconds, or at once when woken. A failed pass is logged and the next one comes."""

from __future__ import annotations

import logging
import threading

from gateway.context import Services

log = logging.getLogger("qiskit_serverless.gateway")


class Periodic:
    every: float
    name: str

    def __init__(self, services: Services) -> None:
        self.services = services
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def work(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.work()
            except Exception:
                log.exception("%s: a pass failed", self.name)
            self.wake.wait(self.every)
            self.wake.clear()
