"""An in-memory stand-in for Prefect behind the gateway's `Orchestrator` protocol.

It keeps deployments and flow runs with their state histories, and follows Prefect's rules
where the services depend on them: a new run is Scheduled; stopping a run nobody has claimed
cancels it at once, otherwise it turns Cancelling. Tests play the executor with `advance`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from prefect.client.schemas.objects import State, StateType
from prefect.states import Cancelled, Cancelling, Scheduled

from core.job_log import STOPPED_MESSAGE
from core.tags import job_tags
from gateway.orchestrator import (
    ACTIVE_STATE_TYPES,
    DeploymentSpec,
    ProgramRun,
    Retries,
    Schedule,
    deployment_name,
    parameter_schema,
)


@dataclass
class Deployment:
    id: str
    name: str
    description: str | None
    version: str | None
    parameter_schema: dict[str, Any]
    schedules: list[Schedule] = field(default_factory=list)


@dataclass
class Run:
    id: str
    deployment_id: str
    parameters: dict[str, Any]
    tags: list[str]
    history: list[State] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    retries: Retries = field(default_factory=Retries)

    @property
    def state(self) -> State:
        return self.history[-1]


class FakeOrchestrator:
    def __init__(self, work_pool: str = "qiskit-serverless") -> None:
        self.work_pool = work_pool
        self.deployments: dict[str, Deployment] = {}
        self.runs: dict[str, Run] = {}
        self.executor_settles_stops = True  # a Cancelling run becomes Cancelled, as the executor makes it

    # the protocol

    def upsert_program(self, program: DeploymentSpec) -> str:
        name = deployment_name(self.work_pool, program.owner, program.title, program.provider)
        found = next((deployment for deployment in self.deployments.values() if deployment.name == name), None)
        deployment_id = found.id if found else str(uuid.uuid4())
        self.deployments[deployment_id] = Deployment(
            deployment_id,
            name,
            program.description,
            program.version,
            parameter_schema(program.arguments_schema),
            found.schedules if found else [],  # Prefect keeps a deployment's schedules on update
        )
        return deployment_id

    def start_run(
        self,
        *,
        deployment_id: str,
        arguments: dict[str, Any],
        runner: str,
        title: str,
        provider: str | None,
        retries: Retries,
    ) -> str:
        run_id = self.start_in_prefect(deployment_id, arguments, job_tags(runner, title, provider))
        self.runs[run_id].retries = retries
        return run_id

    def runs_to_adopt(self) -> list[ProgramRun]:
        return [
            ProgramRun(run.id, run.deployment_id, run.parameters.get("arguments"), tuple(run.tags), run.created)
            for run in self.runs.values()
            if run.state.type in ACTIVE_STATE_TYPES
        ]

    def schedules(self, deployment_id: str) -> list[Schedule]:
        return list(self.deployments[deployment_id].schedules)

    def add_schedule(
        self,
        deployment_id: str,
        *,
        cron: str | None,
        interval_seconds: float | None,
        timezone: str,
        arguments: dict[str, Any],
        active: bool,
    ) -> Schedule:
        anchor = datetime.now(UTC) if interval_seconds is not None else None
        made = Schedule(str(uuid.uuid4()), cron, interval_seconds, timezone, anchor, arguments, active)
        self.deployments[deployment_id].schedules.append(made)
        return made

    def set_schedule_active(self, deployment_id: str, schedule_id: str, active: bool) -> None:
        kept = self.deployments[deployment_id].schedules
        kept[:] = [replace(each, active=active) if each.id == schedule_id else each for each in kept]

    def remove_schedule(self, deployment_id: str, schedule_id: str) -> None:
        kept = self.deployments[deployment_id].schedules
        kept[:] = [each for each in kept if each.id != schedule_id]

    def adopt_run(self, run: ProgramRun, *, runner: str, title: str, provider: str | None, retries: Retries) -> None:
        faked = self.runs[run.flow_run_id]
        faked.tags = sorted(set(faked.tags) | set(job_tags(runner, title, provider)))
        faked.retries = retries

    def attempts(self, flow_run_id: str) -> int:
        return self.runs[flow_run_id].retries.retries + 1

    def state(self, flow_run_id: str) -> State | None:
        return self.runs[flow_run_id].state

    def states(self, flow_run_ids: Iterable[str]) -> dict[str, State | None]:
        return {run_id: self.runs[run_id].state for run_id in flow_run_ids if run_id in self.runs}

    def matching(self, flow_run_ids: list[str], types: list[StateType]) -> set[str]:
        return {run_id for run_id, state in self.states(flow_run_ids).items() if state and state.type in types}

    def active_jobs(self, owner: str) -> int:
        return sum(
            1 for run in self.runs.values() if f"user:{owner}" in run.tags and run.state.type in ACTIVE_STATE_TYPES
        )

    def history(self, flow_run_id: str) -> list[State]:
        return list(self.runs[flow_run_id].history)

    def stop(self, flow_run_id: str) -> None:
        run = self.runs[flow_run_id]
        if run.state.type in (StateType.SCHEDULED, StateType.PAUSED):
            run.history.append(Cancelled(message=STOPPED_MESSAGE))
            return
        if run.state.is_final():
            return  # Prefect refuses to leave a terminal state
        run.history.append(Cancelling(message=STOPPED_MESSAGE))
        if self.executor_settles_stops:
            run.history.append(Cancelled(message=STOPPED_MESSAGE))

    def healthy(self) -> bool:
        return True

    def executor_ready(self) -> bool:
        return True

    # what Prefect's UI, CLI or a schedule would do

    def start_in_prefect(self, deployment_id: str, arguments: Any, tags: list[str] | None = None) -> str:
        assert deployment_id in self.deployments, "a run needs its program's deployment"
        run = Run(str(uuid.uuid4()), deployment_id, {"arguments": arguments}, tags or [])
        run.history.append(Scheduled())
        self.runs[run.id] = run
        return run.id

    # what the executor would do

    def advance(self, job_id: str, *types: StateType) -> None:
        """Move the job's run (the job's id is its run's) through these states, in order."""
        run = self.runs[job_id]
        for state_type in types:
            run.history.append(State(type=state_type))
