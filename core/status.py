"""The one mapping between Prefect flow-run states and gateway job statuses (docs/architecture.md, Status mapping)."""

from __future__ import annotations

from prefect.client.schemas.objects import StateType

QUEUED, PENDING, RUNNING = "QUEUED", "PENDING", "RUNNING"
SUCCEEDED, FAILED, STOPPING, STOPPED = "SUCCEEDED", "FAILED", "STOPPING", "STOPPED"

ACTIVE = frozenset({QUEUED, PENDING, RUNNING})
TERMINAL = frozenset({SUCCEEDED, FAILED, STOPPED})

_BY_STATE: dict[StateType, str] = {
    StateType.SCHEDULED: QUEUED,
    StateType.PAUSED: QUEUED,
    StateType.PENDING: PENDING,
    StateType.RUNNING: RUNNING,
    StateType.COMPLETED: SUCCEEDED,
    StateType.FAILED: FAILED,
    StateType.CRASHED: FAILED,
    StateType.CANCELLING: STOPPING,
    StateType.CANCELLED: STOPPED,
}


def job_status(state_type: StateType | None) -> str:
    """A job whose flow run has no state yet is still QUEUED."""
    return _BY_STATE.get(state_type, QUEUED) if state_type is not None else QUEUED


def state_types(status: str) -> list[StateType]:
    """Prefect state types that show as this gateway status (empty for an unknown status)."""
    return [state for state, mapped in _BY_STATE.items() if mapped == status]


# The states a run never leaves.
FINAL_STATE_TYPES = frozenset(state for name in TERMINAL for state in state_types(name))
