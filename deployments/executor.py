"""The long-lived executor that serves program deployments.

It holds one Ray connection and runs each flow run of the platform's work pool
through Prefect's own engine, in a thread of this process: a run starts in a
fraction of a second instead of paying a fresh interpreter and fresh Ray workers
(docs/architecture.md). Runs are taken through the work pool's scheduling, as any
Prefect worker takes them, woken at once by Prefect's event stream; a slow poll is the
safety net (missed events, scheduled runs coming due). A Cancelling state kills the
run's Ray task, since nothing else would in-process.

The program tasks belong to the executor's supervisor, a detached Ray actor (flows/supervisor.py):
they outlive the executor. SIGTERM makes it take no more runs and exit at once, its programs still
running; the executor started in its place, or another one of the pool, adopts their runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import ray
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort
from prefect.context import SettingsContext
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter
from prefect.events.worker import EventsWorker
from prefect.exceptions import ObjectNotFound
from prefect.flow_engine import run_flow
from prefect.logging.handlers import APILogWorker
from prefect.states import Cancelled, Crashed, Pending, Scheduled

from core.job_log import EXECUTOR_LOST, EXECUTOR_SHUT_DOWN, STOPPED_MESSAGE
from core.lost_runs import ensure_lost_run_automation
from core.settings import RAY_NAMESPACE, Settings, platform_env
from core.work_pool import ensure_work_pool
from flows import cancellation, node, supervisor
from flows.node import NodeRuntime
from flows.program_process import warm_up
from flows.run_program import for_runtime

log = logging.getLogger("qiskit_serverless.executor")

POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 10.0
# An executor whose last heartbeat is older than this is gone: the runs it held are closed.
GONE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)
RECOVER_SECONDS = 15.0  # how often each executor looks for runs a gone executor held
CLAIMED_BY = "Claimed by "  # the Pending state's message: which executor holds the run
WARM_WORKERS = 2
# Clocks of Prefect and the executor may differ a little: a run due within it is due.
DUE_SLACK = timedelta(seconds=0.1)
RECOVERY_PAGE = 200
SUPERVISOR_SECONDS = 10.0  # a supervisor that does not answer within it is on an unreachable node
HAND_OVER_SECONDS = 35.0  # SIGTERM waits this long at most for the runs it follows to reach its supervisor
# What a run a previous executor left in each state becomes.
LEFT_BEHIND: dict[StateType, Callable[[], State[Any]]] = {
    StateType.PENDING: lambda: Scheduled(message="Given back: claimed by an executor that stopped before starting it."),
    StateType.RUNNING: lambda: Crashed(message=EXECUTOR_LOST),
    StateType.CANCELLING: lambda: Cancelled(message=STOPPED_MESSAGE),
}
RERUN_REFUSED = "(A finished job is not run again: run the program for a new job.)"


@dataclass
class Supervised:
    """What the cluster's supervisors hold, read once per pass of recovery."""

    holding: dict[str, str] = field(default_factory=dict)  # flow run id -> the supervisor holding its program
    runs: dict[str, list[str]] = field(default_factory=dict)  # supervisor -> the flow runs it holds
    following: set[str] = field(default_factory=set)  # executors whose Ray driver is alive
    gone: set[str] = field(default_factory=set)  # executors whose Ray driver has exited
    complete: bool = True  # every supervisor answered

    def follows(self, executor: str | None) -> bool:
        return executor is not None and executor in self.following

    def never_started(self, executor: str | None) -> bool:
        """Whether a Running run that `executor` claimed, and that no supervisor holds, never had its
        program submitted: that executor has exited but its supervisor, which answered, does not hold
        it (a supervisor lets go of a run only once its flow has returned)."""
        return executor is not None and executor in self.gone and supervisor.name_of(executor) in self.runs


class SettingsShippedAsEnvironment(SettingsContext):
    """The executor's Prefect settings, which a Ray task receives as nothing.

    prefect-ray ships each task with the submitting thread's serialized settings, and the task
    rebuilds a whole settings model from them: about 45 ms of CPU here and 75 ms there on every
    job's path. The platform's Ray workers already run with the same settings, from the
    environment the executor gives them (`platform_env`, PREFECT_PROFILES_PATH included), and an
    empty settings context makes the task use those.
    """

    def serialize(self, include_secrets: bool = True) -> dict[str, Any]:
        return {}


class Executor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Unique even when a container restarts it under the same host name and pid: a name met
        # again would take over the supervisor, and the runs, of the executor it replaces.
        self.name = f"executor-{socket.gethostname()}-{os.getpid()}-{uuid4().hex[:6]}"
        self.runtime = NodeRuntime.of(settings)
        self.supervisor = supervisor.name_of(self.name)
        self.flow = for_runtime(self.runtime, self.supervisor)
        self.pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="flow-run")
        self.active: set[str] = set()
        self.lock = threading.Lock()
        self.stopping = asyncio.Event()
        self.handing_over = asyncio.Event()  # SIGTERM: no more runs taken; the programs left to the supervisor
        self.wake = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop
        self.background: set[asyncio.Task[None]] = set()

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the executor is stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine in the background, keeping a reference until it ends."""
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def connect_ray(self) -> None:
        ray.init(
            address=self.settings.ray_cluster,
            namespace=RAY_NAMESPACE,
            runtime_env={"env_vars": platform_env(self.settings)},
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        # Warmed through the supervisor: its tasks run on the workers it leased.
        own = supervisor.supervisor_of(self.name)
        options = {"num_cpus": self.settings.job_num_cpus}
        warming = ray.get([own.run.remote(warm_up, options, self.runtime) for _ in range(WARM_WORKERS)])
        ray.get([ref for [ref] in warming])

    async def heartbeat(self) -> None:
        """Mark the work pool READY in Prefect (the gateway's readiness asks for it) and say this
        executor is alive (the other executors of the pool leave the runs it holds alone)."""
        while not self.stopping.is_set():
            try:
                async with get_client() as client:
                    await client.send_worker_heartbeat(
                        work_pool_name=self.settings.work_pool,
                        worker_name=self.name,
                        heartbeat_interval_seconds=HEARTBEAT_SECONDS,
                    )
            except Exception:
                log.exception("heartbeat failed")
            await self.pause(HEARTBEAT_SECONDS)

    async def dispatch(self) -> None:
        """Start the pool's due runs in the order and number Prefect's worker scheduling gives them.

        Asking the work pool (not reading flow runs) is what makes its and its queues'
        concurrency limits, priorities and pause apply. A Scheduled event or a run's end
        wakes this loop at once; several wakes during one ask make one more ask, not many.
        A run coming due before the next ask (a schedule's) sets the wake-up to its time.
        """
        while not self.handing_over.is_set() and not self.stopping.is_set():
            self.wake.clear()
            pause = POLL_SECONDS
            try:
                async with get_client() as client:
                    soon = await client.get_scheduled_flow_runs_for_work_pool(
                        self.settings.work_pool, scheduled_before=datetime.now(UTC) + timedelta(seconds=POLL_SECONDS)
                    )
                now = datetime.now(UTC)
                waits = [(each.flow_run, _start_of(each.flow_run, now) - now) for each in soon]
                due = [flow_run for flow_run, wait in waits if wait <= DUE_SLACK]
                pause = min([POLL_SECONDS, *[wait.total_seconds() for _, wait in waits if wait > DUE_SLACK]])
                # Claimed before the next ask: a run still Scheduled there would not count against the limits.
                await asyncio.gather(*(self.claim(flow_run) for flow_run in due))
            except Exception:
                log.exception("could not read the work pool's due runs")
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=pause)
            except TimeoutError:
                pass

    async def claim(self, flow_run: FlowRun) -> None:
        """Take a due run (Pending is the lock between executors) and start it."""
        key = str(flow_run.id)
        with self.lock:
            if key in self.active or self.handing_over.is_set():
                return
            self.active.add(key)
        if flow_run.run_count > 0:
            await self.keep_finished(flow_run)
            self._release(key)
            return
        try:
            async with get_client() as client:
                claimed = await self._claim(client, flow_run.id)
        except Exception:
            log.exception("could not claim flow run %s", key)
            claimed = None
        if claimed is None:
            self._release(key)
            return
        # The accepted state carries what the engine needs (e.g. a deployment concurrency lease).
        self.pool.submit(self._execute, flow_run.model_copy(update={"state": claimed}))

    async def _claim(self, client: PrefectClient, flow_run_id: UUID, force: bool = False) -> State[Any] | None:
        """Mark the run this executor's: its accepted Pending state, or None when refused."""
        claimed: OrchestrationResult[Any] = await client.set_flow_run_state(
            flow_run_id, Pending(message=f"{CLAIMED_BY}{self.name}."), force=force
        )
        return claimed.state if claimed.status == SetStateStatus.ACCEPT else None

    async def keep_finished(self, flow_run: FlowRun) -> None:
        """A job that ran stays as it ended: a Retry of a finished run from the Prefect UI (or any
        re-scheduling of a run that already ran) gets its final state back instead of running the
        program again outside any request, token or fresh snapshot. A new run is a new job."""
        try:
            async with get_client() as client:
                history = await client.read_flow_run_states(flow_run.id)
                final = next((state for state in reversed(history) if state.is_final()), None)
                restored = State(
                    type=final.type if final else StateType.CRASHED,
                    name=final.name if final else None,
                    message=f"{final.message if final and final.message else ''} {RERUN_REFUSED}".strip(),
                )
                await client.set_flow_run_state(flow_run.id, restored, force=True)
            log.warning("flow run %s was scheduled again after it ran: kept %s", flow_run.id, restored.type.value)
        except Exception:
            log.exception("could not restore the final state of flow run %s", flow_run.id)

    def _execute(self, flow_run: FlowRun, adopted_from: str | None = None) -> None:
        key = str(flow_run.id)
        current = SettingsContext.get()
        assert current is not None  # Prefect always has one
        settings = SettingsShippedAsEnvironment(profile=current.profile, settings=current.settings)
        adopting = supervisor.adopting(adopted_from) if adopted_from else nullcontext()
        try:
            with node.serving(self.runtime), settings, adopting:
                run_flow(self.flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state")
        except BaseException:
            log.exception("flow run %s ended with an engine error", key)
        finally:
            self._release(key)

    def _release(self, key: str) -> None:
        with self.lock:
            self.active.discard(key)
        cancellation.unregister(key)
        self.loop.call_soon_threadsafe(self.wake.set)  # a slot of the pool's limit may be free

    async def cancel(self, flow_run_id: UUID) -> None:
        key = str(flow_run_id)
        with self.lock:
            ours = key in self.active
        if ours:
            cancellation.request(key)
            return
        # Not ours: finished here only when no executor that is alive follows it (e.g. cancelled while
        # still scheduled, or followed by one that is gone); the one that follows it stops it itself.
        async with get_client() as client:
            flow_run = await client.read_flow_run(flow_run_id)
            if flow_run.work_pool_name != self.settings.work_pool or not (
                flow_run.state and flow_run.state.is_cancelling()
            ):
                return
            supervised = await self._supervised()
            left, _ = await self._left(client, flow_run, await self._alive(client), supervised)
            if not left:
                return
            if (holding := supervised.holding.get(key)) is not None:
                await self._stop_held(holding, key)
            await client.set_flow_run_state(flow_run_id, Cancelled(message=STOPPED_MESSAGE), force=True)

    def cancelled(self, key: str) -> None:
        """A run of ours was cancelled outright (a stop that found it still Pending, or waiting
        for a retry). Prefect lets the engine take it from Cancelled to Running again, so the
        flow is told to stop: it returns Cancelled before it starts the program (flows/run_program.py)."""
        with self.lock:
            ours = key in self.active
        if ours:
            cancellation.request(key)

    async def _alive(self, client: PrefectClient) -> set[str]:
        """The executors of the pool whose heartbeat is recent (this one always)."""
        workers = await client.read_workers_for_work_pool(self.settings.work_pool)
        since = datetime.now(UTC) - GONE_AFTER
        recent = {each.name for each in workers if each.last_heartbeat_time and each.last_heartbeat_time > since}
        return recent | {self.name}

    async def _holder(self, client: PrefectClient, run: FlowRun) -> str | None:
        """The executor that claimed the run last (its Pending state says which)."""
        states = [run.state] if run.state is not None and run.state.is_pending() else []
        states = states or await client.read_flow_run_states(run.id)
        claims = [state.message or "" for state in states if state.is_pending()]
        claims = [claim for claim in claims if claim.startswith(CLAIMED_BY)]
        return claims[-1].removeprefix(CLAIMED_BY).rstrip(".") if claims else None

    async def _left(
        self, client: PrefectClient, run: FlowRun, alive: set[str], supervised: Supervised
    ) -> tuple[bool, str | None]:
        """Whether no executor follows the run any more, and the executor that claimed it last. A
        run whose program a supervisor holds is followed by that executor until its Ray driver has
        exited; any other run, until its heartbeat is old. A run this executor claimed and no
        longer executes is nobody's."""
        with self.lock:
            if str(run.id) in self.active:
                return False, self.name
        holder = await self._holder(client, run)
        if holder == self.name:
            return True, holder
        if str(run.id) in supervised.holding:
            return not supervised.follows(holder), holder
        return holder is None or holder not in alive, holder

    async def recover(self) -> None:
        """Take over the pool's runs that an executor which is gone left behind (at start, then every
        RECOVER_SECONDS: several executors may serve one pool, and each leaves the others' alone).

        A run whose program a supervisor still holds is adopted: this executor follows it to its
        end. Otherwise, a run still Pending was claimed but never started: it is given back
        (Scheduled) and runs now. A run Running lost its program (its supervisor is gone, with its
        node or the cluster): it becomes Crashed (FAILED). A stop in progress becomes Cancelled.
        Every such run is read, a page at a time: a run handled leaves the filter, one held by a live
        executor stays (and is skipped by the offset).
        """
        handled: set[UUID] = set()
        async with get_client() as client:
            alive = await self._alive(client)
            supervised = await self._supervised()
            skipped = 0
            while True:
                page = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(LEFT_BEHIND)))
                    ),
                    work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self.settings.work_pool])),
                    sort=FlowRunSort.ID_DESC,
                    limit=RECOVERY_PAGE,
                    offset=skipped,
                )
                for run in page:
                    if run.id in handled:
                        continue
                    handled.add(run.id)
                    left, holder = await self._left(client, run, alive, supervised)
                    if not left:
                        skipped += 1
                        continue
                    kind = run.state.type if run.state is not None else StateType.RUNNING
                    holding = supervised.holding.get(str(run.id))
                    if holding is not None and kind != StateType.CANCELLING:
                        await self.adopt(client, run, holding, supervised)
                        skipped += 1  # adopted (claimed by this one, it stays in the filter), or left to another
                        continue
                    if kind == StateType.RUNNING and supervised.never_started(holder):
                        await self.adopt(client, run, None, supervised)  # its program runs now, for the first time
                        skipped += 1
                        continue
                    if holding is not None:
                        await self._stop_held(holding, str(run.id))
                    elif kind == StateType.RUNNING and not supervised.complete:
                        skipped += 1  # a supervisor did not answer: it may hold this program
                        continue
                    now = LEFT_BEHIND[kind]()
                    # Forced only out of Pending: a run that ended since it was read keeps its end.
                    result = await client.set_flow_run_state(run.id, now, force=kind == StateType.PENDING)
                    if result.status == SetStateStatus.ACCEPT:
                        log.warning("flow run %s left by an executor that is gone: now %s", run.id, now.type.value)
                if len(page) < RECOVERY_PAGE:
                    break
            await self._let_go(client, supervised, handled)

    async def _supervised(self) -> Supervised:
        """What the supervisors of the cluster hold, and which of their executors have exited."""
        found = Supervised()
        for name in await asyncio.to_thread(supervisor.supervisors):
            actor = supervisor.handle(name)
            if actor is None:
                continue  # ended since it was listed
            try:
                runs, gone = await asyncio.wait_for(
                    asyncio.gather(actor.runs.remote(), actor.executor_gone.remote()), SUPERVISOR_SECONDS
                )
            except Exception:  # gone meanwhile, busy, or on an unreachable node
                log.warning("supervisor %s did not answer", name)
                found.complete = False
                found.following.add(supervisor.executor_of(name))  # not known to be gone: left alone
                continue
            executor = supervisor.executor_of(name)
            found.runs[name] = runs
            found.holding.update((run, name) for run in runs)
            (found.gone if gone else found.following).add(executor)
        return found

    async def adopt(self, client: PrefectClient, run: FlowRun, holding: str | None, supervised: Supervised) -> bool:
        """Follow a run whose executor is gone and whose program `holding` still runs (None: whose
        program was never started): claim it, and re-enter Prefect's engine for it, whose task joins
        the running program (or starts it)."""
        key = str(run.id)
        actor = supervisor.handle(holding) if holding is not None else None
        with self.lock:
            if key in self.active or self.handing_over.is_set() or (holding is not None and actor is None):
                return False
            self.active.add(key)
        try:
            # The supervisor settles which executor adopts a run, when several recover at once; and
            # the run must not have moved since it was read (the claim is forced out of Running).
            following = sorted(supervised.following | {self.name})
            if (actor is None or await actor.adopt.remote(key, self.name, following)) and (
                (await client.read_flow_run(run.id)).state == run.state
            ):
                claimed = await self._claim(client, run.id, force=True)
                if claimed is not None:
                    log.warning(
                        "flow run %s adopted: its program %s",
                        key,
                        f"runs on under {holding}" if holding else "starts now",
                    )
                    self.pool.submit(self._execute, run.model_copy(update={"state": claimed}), holding)
                    return True
        except Exception:
            log.exception("could not adopt flow run %s", key)
        self._release(key)
        return False

    async def _stop_held(self, holding: str, flow_run_id: str) -> None:
        """Stop a program whose executor is gone, through the supervisor that holds it."""
        actor = supervisor.handle(holding)
        try:
            if actor is not None:
                await asyncio.wait_for(
                    actor.stop.remote(flow_run_id, self.settings.stop_grace_seconds), SUPERVISOR_SECONDS
                )
        except Exception:
            log.exception("could not stop the program of flow run %s", flow_run_id)

    async def _let_go(self, client: PrefectClient, supervised: Supervised, handled: set[UUID]) -> None:
        """Supervisors of executors that have exited forget the runs that have ended, and end once
        they hold none."""
        for name, runs in supervised.runs.items():
            if supervisor.executor_of(name) not in supervised.gone:
                continue
            actor = supervisor.handle(name)
            if actor is None:
                continue
            if not runs:
                ray.kill(actor)
                log.info("%s ended: its executor has exited and it holds no program", name)
                continue
            for run in runs:
                if UUID(run) in handled:
                    continue
                try:
                    state = (await client.read_flow_run(UUID(run))).state
                    ended = state is None or state.is_final()
                except ObjectNotFound:
                    ended = True  # the run was deleted
                if ended:
                    await actor.forget_run.remote(run)

    async def keep_recovering(self) -> None:
        while not self.stopping.is_set():
            await self.pause(RECOVER_SECONDS)
            try:
                await self.recover()
            except Exception:
                log.exception("could not look for runs left behind")

    async def listen(self) -> None:
        event_filter = EventFilter(
            event=EventNameFilter(
                name=["prefect.flow-run.Scheduled", "prefect.flow-run.Cancelling", "prefect.flow-run.Cancelled"]
            )
        )
        while not self.stopping.is_set():
            try:
                async with get_events_subscriber(filter=event_filter, reconnection_attempts=1_000_000) as events:
                    async for event in events:
                        flow_run_id = event.resource.id.rsplit(".", 1)[-1]
                        if event.event.endswith("Scheduled"):
                            self.wake.set()
                        elif event.event.endswith("Cancelled"):
                            self.cancelled(flow_run_id)
                        else:
                            self.spawn(self.cancel(UUID(flow_run_id)))
            except Exception:
                log.exception("event stream lost; reconnecting")
                await asyncio.sleep(1)

    async def poll_cancelling(self) -> None:
        """The safety net for Cancelling events missed while the event stream was down."""
        while not self.stopping.is_set():
            try:
                async with get_client() as client:
                    cancelling = await client.read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.CANCELLING]))
                        ),
                        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[self.settings.work_pool])),
                        limit=50,
                    )
                for run in cancelling:
                    self.spawn(self.cancel(run.id))
            except Exception:
                log.exception("poll failed")
            await self.pause(POLL_SECONDS)

    def _ensure_work_pool(self) -> None:
        with get_client(sync_client=True) as client:
            ensure_work_pool(client, self.settings.work_pool)
            ensure_lost_run_automation(client)

    def stop_now(self) -> None:
        """SIGINT: stop the running jobs (each keeps what its program wrote) and exit."""
        self.stopping.set()

    def hand_over(self) -> None:
        """SIGTERM (an upgrade, a rolling restart, a pod's termination): take no more runs and exit at
        once. The programs run on under this executor's supervisor; the executor started in its
        place, or another one of the pool, adopts their runs."""
        if not self.stopping.is_set():
            self.handing_over.set()
            self.stopping.set()

    async def _hand_over(self) -> None:
        """Wait (HAND_OVER_SECONDS at most) until every run this executor follows has its program
        held by the supervisor, or has ended, and until the runs that ended are settled: whatever
        is not held yet when the process exits would be lost."""
        deadline = self.loop.time() + HAND_OVER_SECONDS
        while self.loop.time() < deadline:
            with self.lock:
                following = set(self.active)
            if following <= set((await self._supervised()).holding):  # adopted runs: another supervisor's
                break
            await asyncio.sleep(0.5)
        for thread in threading.enumerate():
            if thread.name.startswith(("settle-", "end-flows-")):
                await asyncio.to_thread(thread.join, max(0.0, deadline - self.loop.time()))
        log.info("handing over: %d running programs left to %s", len(self.active), self.supervisor)

    async def leave(self) -> None:
        """Say this executor is gone, so that the others adopt its runs now rather than once its
        heartbeat is old."""
        try:
            async with get_client() as client:
                await client.request(
                    "DELETE",
                    "/work_pools/{work_pool_name}/workers/{name}",
                    path_params={"work_pool_name": self.settings.work_pool, "name": self.name},
                )
        except Exception:
            log.exception("could not remove this executor from the work pool")

    async def serve(self) -> bool:
        """Serve until SIGINT or SIGTERM; True when the running programs were handed over (the
        process must then exit without waiting for the threads that follow them)."""
        self.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._ensure_work_pool)
        self.connect_ray()
        await self.recover()
        # Installed after ray.init, which puts in its own SIGTERM handler (it aborts the process).
        self.loop.add_signal_handler(signal.SIGINT, self.stop_now)
        self.loop.add_signal_handler(signal.SIGTERM, self.hand_over)
        log.info("executor ready: work pool %s, Ray %s", self.settings.work_pool, self.settings.ray_cluster)
        tasks = [
            asyncio.create_task(job())
            for job in (self.listen, self.dispatch, self.poll_cancelling, self.heartbeat, self.keep_recovering)
        ]
        await self.stopping.wait()
        for pending in tasks:
            pending.cancel()
        if self.handing_over.is_set():
            await self._hand_over()
            return True
        with self.lock:
            running_now = list(self.active)
        for running in running_now:
            cancellation.request(running, EXECUTOR_SHUT_DOWN)
        self.pool.shutdown(wait=False, cancel_futures=True)
        return False


def _start_of(flow_run: FlowRun, now: datetime) -> datetime:
    return flow_run.next_scheduled_start_time or flow_run.expected_start_time or now


def main() -> None:
    # Prefect configures the root logger at import; ours gets its own handler.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s executor %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    settings = Settings()
    os.environ.update(platform_env(settings))
    executor = Executor(settings)
    if asyncio.run(executor.serve()):
        # The threads following the handed-over runs are left: their runs are adopted elsewhere.
        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)
        asyncio.run(executor.leave())
        logging.shutdown()
        os._exit(0)


if __name__ == "__main__":
    main()
