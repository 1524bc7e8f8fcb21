"""Which flow runs this process is executing, and which of them were asked to stop.

The executor runs flow runs in-process, so nothing in Prefect acts on a
Cancelling state: this registry lets the executor stop the run's Ray task
(and with it the program's process) and lets the flow tell a stop from a crash.
"""

from __future__ import annotations

import threading
from typing import Any

import ray

GRACE_SECONDS = 10.0  # for a stopped job to push its data area back to object storage

_lock = threading.Lock()
_refs: dict[str, Any] = {}
_requested: set[str] = set()


def register(flow_run_id: str, ref: Any) -> None:
    with _lock:
        _refs[flow_run_id] = ref
        cancel_now = flow_run_id in _requested
    if cancel_now:
        _stop(flow_run_id, ref)


def unregister(flow_run_id: str) -> None:
    with _lock:
        _refs.pop(flow_run_id, None)
        _requested.discard(flow_run_id)


def request(flow_run_id: str) -> None:
    """Ask a run to stop; stops its Ray task now if it has one."""
    with _lock:
        _requested.add(flow_run_id)
        ref = _refs.get(flow_run_id)
    if ref is not None:
        _stop(flow_run_id, ref)


def _stop(flow_run_id: str, ref: Any) -> None:
    """Interrupt the task (it kills the program and saves what the program wrote), then kill the
    task outright if it has not ended within GRACE_SECONDS."""
    ray.cancel(ref, force=False)

    def force() -> None:
        with _lock:
            still_running = _refs.get(flow_run_id) is ref
        if still_running:
            ray.cancel(ref, force=True)

    timer = threading.Timer(GRACE_SECONDS, force)
    timer.daemon = True
    timer.start()


def requested(flow_run_id: str) -> bool:
    with _lock:
        return flow_run_id in _requested
