"""Which flow runs this process is executing, and which of them were asked to stop.

The executor runs flow runs in-process, so nothing in Prefect acts on a
Cancelling state: this registry lets the executor stop the run's Ray task
(and with it the program's process) and lets the flow tell a stop from a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from core.job_log import STOPPED_MESSAGE


@dataclass(frozen=True)
class Task:
    """A run's Ray task, and how to tell that it is still saving its job's data area."""

    ref: Any
    copy_back: Callable[[], bytes | None]  # the copy-back's progress, None when not copying back
    grace_seconds: float  # how long a stopped task has to end before it is killed


log = logging.getLogger("qiskit_serverless.executor")
_lock = threading.Lock()
_tasks: dict[str, Task] = {}
_requested: dict[str, str] = {}  # flow run -> why it was asked to stop


def register(flow_run_id: str, task: Task) -> None:
    with _lock:
        _tasks[flow_run_id] = task
        cancel_now = flow_run_id in _requested
    if cancel_now:
        _stop(flow_run_id, task)


def unregister(flow_run_id: str) -> None:
    with _lock:
        _tasks.pop(flow_run_id, None)
        _requested.pop(flow_run_id, None)


def request(flow_run_id: str, reason: str = STOPPED_MESSAGE) -> None:
    """Ask a run to stop; stops its Ray task now if it has one. The first reason given stands."""
    with _lock:
        _requested.setdefault(flow_run_id, reason)
        task = _tasks.get(flow_run_id)
    if task is not None:
        _stop(flow_run_id, task)


def _stop(flow_run_id: str, task: Task) -> None:
    """Interrupt the task (it kills the program and saves what the program wrote), then kill the
    task outright if it has not ended within its grace, unless its copy-back of the data area
    moved since the last look."""
    ray.cancel(task.ref, force=False)
    _force_later(flow_run_id, task, None)


def _force_later(flow_run_id: str, task: Task, last_beat: bytes | None) -> None:
    def force() -> None:
        with _lock:
            if _tasks.get(flow_run_id) is not task:
                return  # it ended
        try:
            beat = task.copy_back()
        except Exception:
            log.exception("could not read the copy-back progress of flow run %s", flow_run_id)
            beat = None  # unknown: the task is killed as if it had stalled
        if beat is not None and beat != last_beat:
            _force_later(flow_run_id, task, beat)
        else:
            ray.cancel(task.ref, force=True)

    timer = threading.Timer(task.grace_seconds, force)
    timer.daemon = True
    timer.start()


def requested(flow_run_id: str) -> bool:
    with _lock:
        return flow_run_id in _requested


def reason(flow_run_id: str) -> str:
    """Why the run was asked to stop (the message of its Cancelled state)."""
    with _lock:
        return _requested.get(flow_run_id, STOPPED_MESSAGE)
