"""The gateway's view of Prefect: deployments, flow runs, their states and cancellation.

Run state is read from Prefect every time (DESIGN.md principle 1); nothing here caches it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
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

from deployments import program_deployment
from flows.cancellation import STOPPED_MESSAGE
from gateway import status
from gateway.settings import Settings

ACTIVE_STATE_TYPES = [state for name in status.ACTIVE for state in status.state_types(name)]


class Orchestrator:
    def __init__(self, client: SyncPrefectClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def upsert_program(
        self, *, owner: str, title: str, provider: str | None, description: str | None, version: str | None
    ) -> str:
        deployment_id = program_deployment.upsert_deployment(
            self.client,
            self.settings,
            name=program_deployment.deployment_name(self.settings, owner, title, provider),
            owner=owner,
            title=title,
            provider=provider,
            description=description,
            version=version,
        )
        return str(deployment_id)

    def start_job(self, *, deployment_id: str, job_id: str, owner: str, title: str, provider: str | None) -> str:
        flow_run = self.client.create_flow_run_from_deployment(
            UUID(deployment_id),
            parameters={"job_id": job_id},
            name=title.replace("/", "-"),
            tags=program_deployment.job_tags(owner, title, provider),
        )
        return str(flow_run.id)

    def state(self, flow_run_id: str) -> State | None:
        return self.client.read_flow_run(UUID(flow_run_id)).state

    def states(self, flow_run_ids: Iterable[str]) -> dict[str, State | None]:
        ids = [UUID(run_id) for run_id in flow_run_ids]
        if not ids:
            return {}
        runs = self.client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=len(ids))
        return {str(run.id): run.state for run in runs}

    def matching(self, flow_run_ids: list[str], types: list[StateType]) -> set[str]:
        """Which of these runs are in one of the given state types."""
        found: set[str] = set()
        for start in range(0, len(flow_run_ids), 200):
            chunk = flow_run_ids[start : start + 200]
            states = self.states(chunk)
            found.update(run_id for run_id, state in states.items() if state is not None and state.type in types)
        return found

    def active_jobs(self, owner: str) -> int:
        """How many of the user's runs on this platform's work pool are queued, pending or running."""
        return self.client.count_flow_runs(
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[program_deployment.user_tag(owner)]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_STATE_TYPES)),
            ),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self.settings.work_pool])),
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
        return self.client.read_work_pool(self.settings.work_pool).status == WorkPoolStatus.READY
