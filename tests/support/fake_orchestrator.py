"""An in-memory stand-in for Prefect behind the gateway's `Orchestrator` protocol.

It keeps deployments and flow runs with their state histories, and follows Prefect's rules
where the services depend on them: a new run is Scheduled; a run's create is idempotent by its
job; stopping a run nobody has claimed cancels it at once, otherwise it turns Cancelling. Every
new state goes to the follower, as Prefect's event stream does. Tests play the executor with
`advance`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
from prefect.client.schemas.objects import State, StateType
from prefect.states import Cancelled, Cancelling, Scheduled

from core.job_log import STOPPED_MESSAGE
from core.tags import job_of, job_tag, job_tags
from gateway.orchestrator import (
    ACTIVE_STATE_TYPES,
    UNFINISHED_STATE_TYPES,
    DeploymentSpec,
    ProgramRun,
    Retries,
    RunState,
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
        self.follower: Callable[[RunState], None] = lambda change: None
        # Prefect refusing to create runs: (status, text) by job id, or for every job under None.
        self.refusing: dict[str | None, tuple[int, str]] = {}

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
        job_id: str,
        deployment_id: str,
        arguments: dict[str, Any],
        runner: str,
        title: str,
        provider: str | None,
        retries: Retries,
    ) -> str:
        refused = self.refusing.get(job_id) or self.refusing.get(None)
        if refused is not None:
            request = httpx.Request("POST", "http://prefect.test/api/deployments/create_flow_run")
            response = httpx.Response(refused[0], text=refused[1], request=request)
            raise httpx.HTTPStatusError(refused[1], request=request, response=response)
        made = self.run_of(job_id)
        if made is not None:  # the idempotency key
            return made.id
        run_id = self.start_in_prefect(deployment_id, arguments, [*job_tags(runner, title, provider), job_tag(job_id)])
        self.runs[run_id].retries = retries
        return run_id

    def runs_in_flight(self) -> int:
        return sum(1 for run in self.runs.values() if run.state.type in UNFINISHED_STATE_TYPES)

    def follow_states(self, on_change: Callable[[RunState], None], stopping: threading.Event) -> None:
        self.follower = on_change

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
        faked.tags = sorted(set(faked.tags) | {*job_tags(runner, title, provider), job_tag(run.flow_run_id)})
        faked.retries = retries

    def attempts(self, flow_run_id: str) -> int:
        return self.runs[flow_run_id].retries.retries + 1

    def state(self, flow_run_id: str) -> State | None:
        return self.runs[flow_run_id].state

    def states(self, flow_run_ids: Iterable[str]) -> dict[str, State | None]:
        return {run_id: self.runs[run_id].state for run_id in flow_run_ids if run_id in self.runs}

    def history(self, flow_run_id: str) -> list[State]:
        return list(self.runs[flow_run_id].history)

    def stop(self, flow_run_id: str) -> None:
        run = self.runs[flow_run_id]
        if run.state.type in (StateType.SCHEDULED, StateType.PAUSED):
            self.enter(run, Cancelled(message=STOPPED_MESSAGE))
            return
        if run.state.is_final():
            return  # Prefect refuses to leave a terminal state
        self.enter(run, Cancelling(message=STOPPED_MESSAGE))
        if self.executor_settles_stops:
            self.enter(run, Cancelled(message=STOPPED_MESSAGE))

    def healthy(self) -> bool:
        return True

    def executor_ready(self) -> bool:
        return True

    # what Prefect's UI, CLI or a schedule would do

    def start_in_prefect(self, deployment_id: str, arguments: Any, tags: list[str] | None = None) -> str:
        assert deployment_id in self.deployments, "a run needs its program's deployment"
        run = Run(str(uuid.uuid4()), deployment_id, {"arguments": arguments}, tags or [])
        self.runs[run.id] = run
        self.enter(run, Scheduled())
        return run.id

    def enter(self, run: Run, state: State) -> None:
        run.history.append(state)
        self.follower(RunState(run.id, job_of(run.tags), state.type, state.timestamp or datetime.now(UTC)))

    def run_of(self, job_id: str) -> Run | None:
        """The job's run: the one tagged with the job, or (an adopted run) the one with its id."""
        tagged = next((run for run in self.runs.values() if job_tag(job_id) in run.tags), None)
        return tagged or self.runs.get(job_id)

    # what the executor would do

    def advance(self, job_id: str, *types: StateType) -> None:
        """Move the job's run through these states, in order."""
        run = self.run_of(job_id)
        assert run is not None, f"job {job_id} has no run"
        for state_type in types:
            self.enter(run, State(type=state_type))
