"""Short-lived in-process copies of what nearly every request reads: the caller behind a token, and a
job as `GET /jobs/{id}` shows it (clients poll it).

Both would otherwise cost database round trips on every call, and round trips are what a
Python server under load pays most for. Each gateway process keeps its own copies, bounded in
size and age: a change made through this process (a status taken from Prefect, a stop, a sub-status)
drops the job's copy at once, so a caller reads its own writes; a change made elsewhere (another
gateway, the admin CLI) shows within the copy's age (docs/architecture.md, Read cache).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.access.jobs import JobFacts
from gateway.access.subject import Principal
from gateway.jobs.schemas import JobOut

K = TypeVar("K")
V = TypeVar("V")

PRINCIPAL_SECONDS = 2.0
JOB_SECONDS = 1.0
ENTRIES = 10_000


class TtlCache(Generic[K, V]):
    """A thread-safe map whose entries expire `ttl` seconds after they were put; the least recently
    used entry goes first past `size` entries."""

    def __init__(self, ttl: float, size: int = ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self.entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self.lock:
            found = self.entries.get(key)
            if found is None:
                return None
            if found[0] <= self.clock():
                del self.entries[key]
                return None
            self.entries.move_to_end(key)
            return found[1]

    def put(self, key: K, value: V) -> None:
        with self.lock:
            self.entries[key] = (self.clock() + self.ttl, value)
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def drop(self, key: K) -> None:
        with self.lock:
            self.entries.pop(key, None)


@dataclass
class ReadCache:
    principals: TtlCache[str, Principal] = field(default_factory=lambda: TtlCache(PRINCIPAL_SECONDS))  # by token digest
    jobs: TtlCache[str, tuple[JobFacts, JobOut]] = field(default_factory=lambda: TtlCache(JOB_SECONDS))  # by job id
    # The digest of each cached job token, by job: a job's token ends with its job.
    job_tokens: TtlCache[str, str] = field(default_factory=lambda: TtlCache(PRINCIPAL_SECONDS))

    def remember_principal(self, digest: str, principal: Principal) -> None:
        self.principals.put(digest, principal)
        if principal.job_id is not None:
            self.job_tokens.put(principal.job_id, digest)

    def forget_job(self, *keys: str | None) -> None:
        """A job changed (keys: its id, or its run's id, which is the id of an adopted run's job)."""
        for key in keys:
            if key is None:
                continue
            self.jobs.drop(key)
            digest = self.job_tokens.get(key)
            if digest is not None:
                self.principals.drop(digest)
