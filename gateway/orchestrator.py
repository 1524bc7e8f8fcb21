"""The gateway's one view of Prefect: program deployments, flow runs, their states and cancellation.

Services talk to the `Orchestrator` protocol; `PrefectOrchestrator` is its one real
implementation (tests use an in-memory fake). Run state is read from Prefect every
time and never cached here: the flow-run state is the one source of truth for status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Protocol
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import State, StateType, WorkPoolStatus
from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus
from prefect.states import Cancelled, Cancelling

from core import status
from core.job_log import STOPPED_MESSAGE
from core.settings import REPO_ROOT, Settings
from core.work_pool import FLOW_NAME, ensure_work_pool

FLOW_ENTRYPOINT = "flows/run_program.py:run_program"
DEFAULT_WORK_POOL = Settings.model_fields["work_pool"].default
PREFECT_BANNED = re.compile(r"[/%&<>]")  # prefect.types.names.BANNED_CHARACTERS
STATES_PER_CALL = 200  # the most flow runs Prefect returns for one filter call
ACTIVE_STATE_TYPES = [state for name in status.ACTIVE for state in status.state_types(name)]


class Orchestrator(Protocol):
    """What the services need of the orchestrator (ids are strings; states are Prefect's)."""

    def upsert_program(
        self, *, owner: str, title: str, provider: str | None, description: str | None, version: str | None
    ) -> str:
        """Create or update the program's deployment; returns its id."""
        ...

    def start_job(self, *, deployment_id: str, job_id: str, owner: str, title: str, provider: str | None) -> str:
        """Create the job's flow run; returns its id."""
        ...

    def state(self, flow_run_id: str) -> State | None: ...

    def states(self, flow_run_ids: Iterable[str]) -> dict[str, State | None]: ...

    def matching(self, flow_run_ids: list[str], types: list[StateType]) -> set[str]:
        """Which of these runs are in one of the given state types."""
        ...

    def active_jobs(self, owner: str) -> int:
        """How many of the user's runs are queued, pending or running."""
        ...

    def history(self, flow_run_id: str) -> list[State]: ...

    def stop(self, flow_run_id: str) -> None: ...

    def healthy(self) -> bool: ...

    def executor_ready(self) -> bool: ...


def user_tag(user: str) -> str:
    return f"user:{user}"


def job_tags(owner: str, title: str, provider: str | None) -> list[str]:
    tags = [user_tag(owner), f"program:{title}"]
    if provider:
        tags.append(f"provider:{provider}")
    return tags


def deployment_name(work_pool: str, owner: str, title: str, provider: str | None) -> str:
    """One deployment per program: `<title> (<owner>)` or `<title> (provider <provider>)`.

    Titles, user and provider names are checked patterns without spaces or parentheses,
    so no two programs share a name (a user may be called like a provider). Platform
    instances sharing one Prefect server are told apart by their work pool, which then
    prefixes the name.
    """
    name = f"{title} (provider {provider})" if provider else f"{title} ({owner})"
    if work_pool != DEFAULT_WORK_POOL:
        name = f"{work_pool}: {name}"
    return PREFECT_BANNED.sub("_", name)


class PrefectOrchestrator:
    def __init__(self, client: SyncPrefectClient, settings: Settings) -> None:
        self.client = client
        self.work_pool = settings.work_pool

    def ensure_work_pool(self) -> None:
        ensure_work_pool(self.client, self.work_pool)

    def upsert_program(
        self, *, owner: str, title: str, provider: str | None, description: str | None, version: str | None
    ) -> str:
        """Create or update the program's deployment (Prefect upserts on flow + name)."""
        flow_id = self.client.create_flow_from_name(FLOW_NAME)
        # Not the user tag: Prefect adds deployment tags to every run, and a provider program's
        # runs belong to whoever runs them (the active-job limit counts runs by user tag).
        tags = [tag for tag in job_tags(owner, title, provider) if tag != user_tag(owner)]
        deployment_id = self.client.create_deployment(
            flow_id=flow_id,
            name=deployment_name(self.work_pool, owner, title, provider),
            version=version,
            description=description,
            work_pool_name=self.work_pool,
            tags=tags,
            path=str(REPO_ROOT),
            entrypoint=FLOW_ENTRYPOINT,
            enforce_parameter_schema=False,
            parameter_openapi_schema={
                "type": "object",
                "title": "Parameters",
                "properties": {"job_id": {"type": "string", "title": "job_id", "position": 0}},
                "required": ["job_id"],
            },
        )
        return str(deployment_id)

    def start_job(self, *, deployment_id: str, job_id: str, owner: str, title: str, provider: str | None) -> str:
        flow_run = self.client.create_flow_run_from_deployment(
            UUID(deployment_id),
            parameters={"job_id": job_id},
            name=title.replace("/", "-"),
            tags=job_tags(owner, title, provider),
        )
        return str(flow_run.id)

    def state(self, flow_run_id: str) -> State | None:
        return self.client.read_flow_run(UUID(flow_run_id)).state

    def states(self, flow_run_ids: Iterable[str]) -> dict[str, State | None]:
        ids = [UUID(run_id) for run_id in flow_run_ids]
        found: dict[str, State | None] = {}
        for start in range(0, len(ids), STATES_PER_CALL):
            chunk = ids[start : start + STATES_PER_CALL]
            runs = self.client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=len(chunk)
            )
            found.update((str(run.id), run.state) for run in runs)
        return found

    def matching(self, flow_run_ids: list[str], types: list[StateType]) -> set[str]:
        states = self.states(flow_run_ids)
        return {run_id for run_id, state in states.items() if state is not None and state.type in types}

    def active_jobs(self, owner: str) -> int:
        """Counted on this platform's work pool only (instances may share a Prefect server)."""
        return self.client.count_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[user_tag(owner)]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_STATE_TYPES)),
            ),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self.work_pool])),
        )

    def history(self, flow_run_id: str) -> list[State]:
        return self.client.read_flow_run_states(UUID(flow_run_id))

    def stop(self, flow_run_id: str) -> None:
        """Ask the run to stop; a run nobody has picked up yet is cancelled at once.

        Not forced: Prefect's orchestration refuses the change if the run finished or
        was claimed meanwhile, and then the stop falls back to Cancelling (which the
        executor acts on), so a just-finished run is never rewritten as stopped.
        """
        run_id = UUID(flow_run_id)
        current = self.state(flow_run_id)
        if current is None or current.type in (StateType.SCHEDULED, StateType.PAUSED):
            result: OrchestrationResult[Any] = self.client.set_flow_run_state(
                run_id, Cancelled(message=STOPPED_MESSAGE)
            )
            if result.status == SetStateStatus.ACCEPT:
                return
        self.client.set_flow_run_state(run_id, Cancelling(message=STOPPED_MESSAGE))

    def healthy(self) -> bool:
        return self.client.api_healthcheck() is None

    def executor_ready(self) -> bool:
        """An executor heartbeats the work pool (Prefect marks the pool READY)."""
        return self.client.read_work_pool(self.work_pool).status == WorkPoolStatus.READY
