"""Program tasks that outlive their executor.

A Ray task belongs to the process that submitted it and dies with it. So the executor's program
tasks are submitted by its supervisor: a detached Ray actor named after the executor, which the
Ray cluster keeps when the executor exits, is upgraded or is killed. The programs go on running.
The executor started in its place, or another one of the pool, adopts their flow runs
(deployments/executor.py): it re-enters Prefect's engine for each, and the flow's task joins the
running one instead of starting the program again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import ray
from prefect.context import FlowRunContext, serialize_context
from prefect.events import emit_event
from prefect.futures import PrefectFuture
from prefect.tasks import Task
from prefect.utilities.engine import collect_task_run_inputs_sync
from prefect_ray.context import RemoteOptionsContext
from prefect_ray.task_runners import PrefectRayFuture, RayTaskRunner
from ray import cloudpickle
from ray._private import state as ray_state
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from core.job_log import SUPERVISOR_LOST
from core.lost_runs import HEARTBEAT, HEARTBEAT_SECONDS
from core.settings import RAY_NAMESPACE

PREFIX = "supervisor-"


class SupervisorLost(RuntimeError):
    """The run was adopted, but the supervisor that ran its program is gone, and the program with it."""

    def __init__(self) -> None:
        super().__init__(SUPERVISOR_LOST)


@dataclass
class Adoption:
    """A run being adopted: its first task joins the one `supervisor` holds (a retry starts anew)."""

    supervisor: str
    joined: bool = False


def name_of(executor: str) -> str:
    return f"{PREFIX}{executor}"


def executor_of(supervisor: str) -> str:
    return supervisor.removeprefix(PREFIX)


class Supervisor:
    """Owns an executor's program tasks (a detached actor: it outlives the executor)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[str, tuple[UUID, Any]] = {}  # by task key: the task run's id and the task
        self.adopters: dict[str, str] = {}  # by flow run: the executor that adopted it
        threading.Thread(target=self._beat, name="heartbeats", daemon=True).start()

    def _beat(self) -> None:
        """Say, for each run whose program this supervisor holds, that the program is not lost
        (core/lost_runs.py)."""
        while True:
            for run in self.runs():
                beat(run)
            time.sleep(HEARTBEAT_SECONDS)

    def start(
        self, key: str, task_run_id: UUID, options: dict[str, Any], call: bytes, upstream: list[Any]
    ) -> list[Any]:
        with self.lock:
            held = self.tasks.get(key)
            if held is not None and held[0] == task_run_id:  # the same call again: its answer was lost
                return [held[1]]
            # The call stays pickled here: unpickling it would import the platform's flows into this actor.
            ref = ray.remote(**options)(_run_pickled).remote(call, *upstream)
            self.tasks[key] = (task_run_id, ref)
        beat(run_of(key))
        return [ref]  # in a list: a returned ref is handed over, not waited for

    def run(self, function: Any, options: dict[str, Any], *args: Any) -> list[Any]:
        """A task that is nobody's run (warming the workers this supervisor's tasks will use)."""
        return [ray.remote(**options)(function).remote(*args)]

    def find(self, key: str) -> list[Any]:
        with self.lock:
            held = self.tasks.get(key)
        return list(held) if held is not None else []

    def forget_run(self, flow_run_id: str) -> None:
        with self.lock:
            for key in [key for key in self.tasks if run_of(key) == flow_run_id]:
                del self.tasks[key]
            self.adopters.pop(flow_run_id, None)

    def executor_gone(self) -> bool:
        """Whether this supervisor's executor has exited: its Ray driver's job is over (kill -9
        included, as soon as Ray sees the connection drop), whatever its Prefect heartbeat says."""
        mine = ray.get_runtime_context().get_job_id()
        return any(job["JobID"] == mine and job["IsDead"] for job in ray_state.jobs())

    def stop(self, flow_run_id: str, grace_seconds: float) -> None:
        """Stop a run's program whose executor is gone: interrupted, then killed after its grace."""
        with self.lock:
            refs = [ref for key, (_, ref) in self.tasks.items() if run_of(key) == flow_run_id]
        for ref in refs:
            ray.cancel(ref, force=False)
        timer = threading.Timer(grace_seconds, lambda: [ray.cancel(ref, force=True) for ref in refs])
        timer.daemon = True
        timer.start()

    def runs(self) -> list[str]:
        """The flow runs whose tasks this supervisor holds."""
        with self.lock:
            return sorted({run_of(key) for key in self.tasks})

    def adopt(self, flow_run_id: str, executor: str, alive: list[str]) -> bool:
        """Whether `executor` may follow the run: no other executor that is alive adopted it first."""
        with self.lock:
            if not any(run_of(key) == flow_run_id for key in self.tasks):
                return False
            adopter = self.adopters.get(flow_run_id)
            if adopter is not None and adopter != executor and adopter in alive:
                return False
            self.adopters[flow_run_id] = executor
            return True


def beat(flow_run_id: str) -> None:
    try:
        emit_event(event=HEARTBEAT, resource={"prefect.resource.id": f"prefect.flow-run.{flow_run_id}"})
    except Exception:  # a heartbeat missed is what the automation is for; the next one is due soon
        logging.getLogger(__name__).exception("could not send the heartbeat of flow run %s", flow_run_id)


def _run_pickled(call: bytes, *upstream: Any) -> Any:
    return RayTaskRunner._run_prefect_task(*upstream, **cloudpickle.loads(call))


def start_supervisor(executor: str) -> Any:
    """This executor's supervisor: detached, never restarted (a restarted one would hold no tasks)."""
    # On the executor's own node: a supervisor placed on a node that is lost would take every
    # program of the executor with it.
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = ray.remote(Supervisor).options(
        name=name_of(executor),
        scheduling_strategy=here,
        namespace=RAY_NAMESPACE,
        lifetime="detached",
        num_cpus=0,
        max_concurrency=64,
        max_restarts=0,
        get_if_exists=True,
    )
    return actor.remote()


_started: dict[str, Any] = {}  # by executor: the handle of its supervisor, started by this process


def supervisor_of(executor: str) -> Any:
    """The executor's supervisor, started once per process (a job's submission costs no GCS lookup)."""
    if executor not in _started:
        _started[executor] = start_supervisor(executor)
    return _started[executor]


def supervisors() -> list[str]:
    """The names of the supervisors alive in the cluster."""
    return [
        entry["name"]
        for entry in ray.util.list_named_actors(all_namespaces=True)
        if entry["namespace"] == RAY_NAMESPACE and entry["name"].startswith(PREFIX)
    ]


def handle(supervisor: str) -> Any | None:
    try:
        return ray.get_actor(supervisor, namespace=RAY_NAMESPACE)
    except ValueError:
        return None


def task_key(flow_run_id: UUID | str, task_name: str) -> str:
    return f"{flow_run_id}/{task_name}"


def run_of(key: str) -> str:
    return key.split("/", 1)[0]


_adopting: ContextVar[Adoption | None] = ContextVar("adoption", default=None)


def adopted_from() -> str | None:
    """The supervisor whose program the flow run in this context follows, when it was adopted."""
    adoption = _adopting.get()
    return adoption.supervisor if adoption is not None else None


@contextmanager
def adopting(supervisor: str | None) -> Iterator[None]:
    """The flow run entered in this context joins the task `supervisor` runs for it (None: no adoption)."""
    token = _adopting.set(Adoption(supervisor) if supervisor is not None else None)
    try:
        yield
    finally:
        _adopting.reset(token)


class SupervisedRayTaskRunner(RayTaskRunner):
    """prefect-ray's task runner, whose tasks are submitted by the executor's supervisor.

    Each task is held under its flow run and name; a run being adopted joins its held task.
    Ray never runs a program task again by itself (`max_retries=0`): Prefect's retries decide.
    """

    def __init__(self, address: str | None, supervisor: str, init_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(address=address, init_kwargs=init_kwargs)
        self.supervisor = supervisor
        self._held: dict[str, Any] = {}

    def duplicate(self) -> SupervisedRayTaskRunner:
        return type(self)(address=self.address, supervisor=self.supervisor, init_kwargs=self.init_kwargs)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SupervisedRayTaskRunner) and super().__eq__(other) and self.supervisor == other.supervisor
        )

    def submit(  # type: ignore[override]
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
        dependencies: dict[str, set[Any]] | None = None,
    ) -> PrefectRayFuture[Any]:
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        context = FlowRunContext.get()
        assert context is not None and context.flow_run is not None
        key = task_key(context.flow_run.id, task.name)
        adoption = _adopting.get()
        if adoption is not None and not adoption.joined:
            adoption.joined = True
            return self._join(adoption.supervisor, key)
        task_run_id = uuid4()
        task_inputs = {
            name: collect_task_run_inputs_sync(value, future_cls=PrefectRayFuture) for name, value in parameters.items()
        }
        serialized = serialize_context(
            asset_ctx_kwargs={
                "task": task,
                "task_run_id": task_run_id,
                "task_inputs": task_inputs,
                "copy_to_child_ctx": True,
            }
        )
        parameters, upstream = self._exchange_prefect_for_ray_futures(parameters)
        options = {**(RemoteOptionsContext.get().current_remote_options or {}), "name": task.name, "max_retries": 0}
        call = cloudpickle.dumps(
            {
                "task": task,
                "task_run_id": task_run_id,
                "parameters": parameters,
                "wait_for": wait_for,
                "dependencies": dependencies,
                "context": serialized,
            }
        )
        executor = executor_of(self.supervisor)
        try:
            supervisor = supervisor_of(executor)
            [ref] = ray.get(supervisor.start.remote(key, task_run_id, options, call, upstream))
        except RayActorError:  # ended meanwhile (by mistake, a node restarted): started again; or its
            # answer was lost (unavailable for a moment): asked again, it answers with the task it started
            _started.pop(executor, None)
            supervisor = supervisor_of(executor)
            [ref] = ray.get(supervisor.start.remote(key, task_run_id, options, call, upstream))
        self._held[key] = supervisor
        return PrefectRayFuture(task_run_id=task_run_id, wrapped_future=ref)

    def _join(self, supervisor_name: str, key: str) -> PrefectRayFuture[Any]:
        supervisor = handle(supervisor_name)
        held = ray.get(supervisor.find.remote(key)) if supervisor is not None else []
        if not held:
            raise SupervisorLost()
        task_run_id, ref = held
        self._held[key] = supervisor
        return PrefectRayFuture(task_run_id=task_run_id, wrapped_future=ref)

    def __exit__(self, *exc_info: Any) -> None:
        """The run is over: its supervisors let go of its tasks."""
        for run, supervisor in {run_of(key): supervisor for key, supervisor in self._held.items()}.items():
            try:
                supervisor.forget_run.remote(run)
            except Exception:  # a supervisor gone meanwhile holds nothing any more
                pass
        self._held.clear()
        super().__exit__(*exc_info)
