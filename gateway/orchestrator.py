"""The gateway's one view of Prefect: program deployments, flow runs, their states and cancellation.

Services talk to the `Orchestrator` protocol; `PrefectOrchestrator` is its one real
implementation (tests use an in-memory fake). The flow-run state is the source of truth for a
job's status; the gateway's store keeps a read model of it, fed by `follow_states` and
reconciled with `states` (gateway/jobs/status_feed.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import DeploymentFlowRunCreate, DeploymentScheduleCreate, DeploymentUpdate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterExpectedStartTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import DeploymentSchedule, FlowRunPolicy, State, StateType, WorkPoolStatus
from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.events.schemas.events import Event
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Cancelling, Scheduled, to_state_create
from prefect.types._datetime import DateTime

from core import status
from core.job_log import STOPPED_MESSAGE
from core.settings import REPO_ROOT, Settings
from core.tags import USER_TAG, job_of, job_tag, job_tags, runner_of
from core.work_pool import FLOW_NAME, ensure_work_pool

FLOW_ENTRYPOINT = "flows/run_program.py:run_program"
DEFAULT_WORK_POOL = Settings.model_fields["work_pool"].default
PREFECT_BANNED = re.compile(r"[/%&<>]")  # prefect.types.names.BANNED_CHARACTERS
STATES_PER_CALL = 200  # the most flow runs Prefect returns for one filter call
ADOPT_AHEAD = timedelta(seconds=2)  # a scheduled run is adopted this long before it is due
ACTIVE_STATE_TYPES = [state for name in status.ACTIVE for state in status.state_types(name)]
UNFINISHED_STATE_TYPES = [*ACTIVE_STATE_TYPES, StateType.CANCELLING]

log = logging.getLogger("qiskit_serverless.orchestrator")


@dataclass(frozen=True)
class DeploymentSpec:
    """What a program's deployment is made of."""

    owner: str
    title: str
    provider: str | None
    description: str | None
    version: str | None
    arguments_schema: dict[str, Any] | None


@dataclass(frozen=True)
class Retries:
    """A job's retries: Prefect retries a failed attempt of its flow run."""

    retries: int = 0
    delay_seconds: int = 0

    def policy(self) -> FlowRunPolicy:
        return FlowRunPolicy(retries=self.retries, retry_delay=self.delay_seconds)


@dataclass(frozen=True)
class ProgramRun:
    """A flow run of a program deployment, as adoption needs it."""

    flow_run_id: str
    deployment_id: str
    arguments: Any
    tags: tuple[str, ...]
    created: datetime

    @property
    def runner(self) -> str | None:
        """Who ran it, from the `user:` tag the gateway puts on the runs it makes."""
        return runner_of(self.tags)

    @property
    def job_id(self) -> str | None:
        """The job it was made for, from the `job:` tag the gateway puts on the runs it makes."""
        return job_of(self.tags)


@dataclass(frozen=True)
class RunState:
    """A flow run's new state, as the gateway's read model takes it."""

    flow_run_id: str
    job_id: str | None  # from the run's job tag, when it has one
    type: StateType
    timestamp: datetime


@dataclass(frozen=True)
class Schedule:
    """One of a deployment's own Prefect schedules: a cron or an interval, with its runs' arguments."""

    id: str
    cron: str | None
    interval_seconds: float | None
    timezone: str
    anchor: datetime | None  # where an interval's runs are counted from
    arguments: Any
    active: bool


class Orchestrator(Protocol):
    """What the services need of the orchestrator (ids are strings; states are Prefect's)."""

    def upsert_program(self, program: DeploymentSpec) -> str:
        """Create the program's deployment, or update what the program decides of it; returns its id."""
        ...

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
        """Create the job's flow run of the program's deployment; returns the run's id. Idempotent:
        asked again for the same job, it returns the run made the first time."""
        ...

    def runs_in_flight(self) -> int:
        """How many of the pool's runs are due or under way (the dispatcher's backpressure)."""
        ...

    def follow_states(self, on_change: Callable[[RunState], None], stopping: threading.Event) -> None:
        """Call `on_change` with each new state of the pool's runs until `stopping` is set."""
        ...

    def runs_to_adopt(self) -> list[ProgramRun]:
        """The pool's runs that are due or under way (candidates for jobs; some already are)."""
        ...

    def adopt_run(self, run: ProgramRun, *, runner: str, title: str, provider: str | None, retries: Retries) -> None:
        """Give a run started in Prefect the tags of a job (the active-job limit counts by them) and
        the program's retries."""
        ...

    def attempts(self, flow_run_id: str) -> int:
        """How many attempts the run may make (its retries plus one)."""
        ...

    def schedules(self, deployment_id: str) -> list[Schedule]: ...

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
        """Add a schedule to the deployment and have its next runs made now."""
        ...

    def set_schedule_active(self, deployment_id: str, schedule_id: str, active: bool) -> None: ...

    def remove_schedule(self, deployment_id: str, schedule_id: str) -> None:
        """Remove the schedule and its future runs (the deployment's other schedules keep theirs)."""
        ...

    def state(self, flow_run_id: str) -> State | None: ...

    def states(self, flow_run_ids: Iterable[str]) -> dict[str, State | None]: ...

    def history(self, flow_run_id: str) -> list[State]: ...

    def stop(self, flow_run_id: str) -> None: ...

    def healthy(self) -> bool: ...

    def executor_ready(self) -> bool: ...


def _schedule(found: DeploymentSchedule) -> Schedule:
    rule = found.schedule
    cron, interval, anchor = None, None, None
    if isinstance(rule, CronSchedule):
        cron = rule.cron
    elif isinstance(rule, IntervalSchedule):
        # A plain datetime: Prefect's is pendulum's, whose arithmetic differs.
        interval, anchor = rule.interval.total_seconds(), datetime.fromtimestamp(rule.anchor_date.timestamp(), UTC)
    # else an RRule schedule made in the Prefect UI: listed, with neither field
    return Schedule(
        id=str(found.id),
        cron=cron,
        interval_seconds=interval,
        timezone=getattr(rule, "timezone", None) or "UTC",
        anchor=anchor,
        arguments=found.parameters.get("arguments", {}),
        active=found.active,
    )


def parameter_schema(arguments_schema: dict[str, Any] | None) -> dict[str, Any]:
    """The deployment's parameter schema: one parameter, `arguments`, a JSON object; the program's
    own schema when it has one (its definitions moved to the root, where its `$ref`s point)."""
    arguments = dict(arguments_schema or {"type": "object"})
    definitions: dict[str, Any] = {key: arguments.pop(key) for key in ("$defs", "definitions") if key in arguments}
    arguments.update(
        title="arguments",
        position=0,
        description=arguments.get("description") or "The program's arguments, as get_arguments() returns them.",
    )
    return {"type": "object", "title": "Parameters", "properties": {"arguments": arguments}, **definitions}


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

    def upsert_program(self, program: DeploymentSpec) -> str:
        """Create the deployment, or update only what the program decides of it (description,
        version, tags, parameter schema): schedules, default parameters and limits set in Prefect stay."""
        name = deployment_name(self.work_pool, program.owner, program.title, program.provider)
        # Not the user tag: Prefect adds deployment tags to every run, and a provider program's
        # runs belong to whoever runs them (the active-job limit counts runs by user tag).
        tags = [tag for tag in job_tags(program.owner, program.title, program.provider) if not tag.startswith(USER_TAG)]
        schema = parameter_schema(program.arguments_schema)
        try:
            existing = self.client.read_deployment_by_name(f"{FLOW_NAME}/{name}")
        except ObjectNotFound:
            deployment_id = self.client.create_deployment(
                flow_id=self.client.create_flow_from_name(FLOW_NAME),
                name=name,
                version=program.version,
                description=program.description,
                work_pool_name=self.work_pool,
                tags=tags,
                path=str(REPO_ROOT),
                entrypoint=FLOW_ENTRYPOINT,
                enforce_parameter_schema=True,
                parameter_openapi_schema=schema,
            )
            return str(deployment_id)
        update = DeploymentUpdate(
            version=program.version,
            description=program.description,
            tags=tags,
            path=str(REPO_ROOT),
            entrypoint=FLOW_ENTRYPOINT,
            enforce_parameter_schema=True,
            parameter_openapi_schema=schema,
        )
        self.client.update_deployment(existing.id, update)
        return str(existing.id)

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
        # What create_flow_run_from_deployment sends, plus the run's own retries (Prefect's flow
        # retries). Prefect answers a second create with the same idempotency key with the first run.
        create = DeploymentFlowRunCreate(
            parameters={"arguments": arguments},
            state=to_state_create(Scheduled()),
            name=title.replace("/", "-"),
            tags=[*job_tags(runner, title, provider), job_tag(job_id)],
            empirical_policy=retries.policy(),
            idempotency_key=job_id,
        )
        response = self.client.request(
            "POST",
            "/deployments/{id}/create_flow_run",
            path_params={"id": UUID(deployment_id)},
            json=create.model_dump(mode="json", exclude_unset=True),
        )
        return str(response.json()["id"])

    def runs_to_adopt(self) -> list[ProgramRun]:
        due = DateTime.now("UTC") + ADOPT_AHEAD
        runs = self.client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=ACTIVE_STATE_TYPES)),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=due),
                deployment_id=FlowRunFilterDeploymentId(is_null_=False),
            ),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self.work_pool])),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=STATES_PER_CALL,
        )
        return [
            ProgramRun(
                flow_run_id=str(run.id),
                deployment_id=str(run.deployment_id),
                arguments=run.parameters.get("arguments"),
                tags=tuple(run.tags),
                created=run.created or datetime.now(UTC),
            )
            for run in runs
        ]

    def schedules(self, deployment_id: str) -> list[Schedule]:
        return [_schedule(found) for found in self.client.read_deployment_schedules(UUID(deployment_id))]

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
        rule: CronSchedule | IntervalSchedule
        if cron is not None:
            rule = CronSchedule(cron=cron, timezone=timezone)
        else:
            assert interval_seconds is not None
            rule = IntervalSchedule(interval=timedelta(seconds=interval_seconds), timezone=timezone)
        create = DeploymentScheduleCreate(schedule=rule, active=active, parameters={"arguments": arguments})
        [made] = self.client.create_deployment_schedules(UUID(deployment_id), [create])
        self._make_runs(deployment_id)
        return _schedule(made)

    def set_schedule_active(self, deployment_id: str, schedule_id: str, active: bool) -> None:
        self.client.update_deployment_schedule(UUID(deployment_id), UUID(schedule_id), active=active)
        self._make_runs(deployment_id)

    def remove_schedule(self, deployment_id: str, schedule_id: str) -> None:
        self.client.delete_deployment_schedule(UUID(deployment_id), UUID(schedule_id))
        self._make_runs(deployment_id)  # Prefect removed every schedule's future runs

    def _make_runs(self, deployment_id: str) -> None:
        """Have Prefect make the deployment's next scheduled runs now, not at its scheduler's next pass."""
        self.client.request("POST", "/deployments/{id}/schedule", path_params={"id": UUID(deployment_id)}, json={})

    def adopt_run(self, run: ProgramRun, *, runner: str, title: str, provider: str | None, retries: Retries) -> None:
        tags = sorted(set(run.tags) | {*job_tags(runner, title, provider), job_tag(run.flow_run_id)})
        self.client.update_flow_run(UUID(run.flow_run_id), tags=tags, empirical_policy=retries.policy())

    def attempts(self, flow_run_id: str) -> int:
        return (self.client.read_flow_run(UUID(flow_run_id)).empirical_policy.retries or 0) + 1

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

    def runs_in_flight(self) -> int:
        return self.client.count_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=UNFINISHED_STATE_TYPES)),
                expected_start_time=FlowRunFilterExpectedStartTime(before_=DateTime.now("UTC")),
            ),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self.work_pool])),
        )

    def follow_states(self, on_change: Callable[[RunState], None], stopping: threading.Event) -> None:
        asyncio.run(self._follow(on_change, stopping))

    async def _follow(self, on_change: Callable[[RunState], None], stopping: threading.Event) -> None:
        """Prefect's event stream of flow-run states; reconnects after a loss (what it missed meanwhile
        is the reconciliation's to catch)."""
        event_filter = EventFilter(event=EventNameFilter(prefix=["prefect.flow-run."]))
        while not stopping.is_set():
            try:
                async with get_events_subscriber(filter=event_filter, reconnection_attempts=1_000_000) as events:
                    async for event in events:
                        change = self._run_state(event)
                        if change is not None:
                            on_change(change)
                        if stopping.is_set():
                            return
            except Exception:
                log.exception("Prefect's event stream was lost; reconnecting")
                await asyncio.sleep(1)

    def _run_state(self, event: Event) -> RunState | None:
        pool = next((each.get("prefect.resource.name") for each in event.related if each.role == "work-pool"), None)
        state_type = event.resource.get("prefect.state-type")
        if pool != self.work_pool or not state_type:
            return None
        tags = [each.id.removeprefix("prefect.tag.") for each in event.related if each.role == "tag"]
        stamp = event.resource.get("prefect.state-timestamp")
        return RunState(
            flow_run_id=event.resource.id.rsplit(".", 1)[-1],
            job_id=job_of(tags),
            type=StateType(state_type),
            timestamp=datetime.fromisoformat(stamp) if stamp else event.occurred,
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
