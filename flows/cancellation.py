"""Which flow runs this process is executing, and which of them were asked to stop.

The executor runs flow runs in-process, so nothing in Prefect acts on a
Cancelling state: this registry lets the executor kill the run's Ray task
(and with it the program's process) and lets the flow tell a stop from a crash.
"""

from __future__ import annotations

import threading
from typing import Any

import ray

STOPPED_MESSAGE = "Job stopped by request."

_lock = threading.Lock()
_refs: dict[str, Any] = {}
_requested: set[str] = set()


def register(flow_run_id: str, ref: Any) -> None:
    with _lock:
        _refs[flow_run_id] = ref
        cancel_now = flow_run_id in _requested
    if cancel_now:
        ray.cancel(ref, force=True)


def unregister(flow_run_id: str) -> None:
    with _lock:
        _refs.pop(flow_run_id, None)
        _requested.discard(flow_run_id)


def request(flow_run_id: str) -> None:
    """Ask a run to stop; kills its Ray task now if it has one."""
    with _lock:
        _requested.add(flow_run_id)
        ref = _refs.get(flow_run_id)
    if ref is not None:
        ray.cancel(ref, force=True)


def requested(flow_run_id: str) -> bool:
    with _lock:
        return flow_run_id in _requested
