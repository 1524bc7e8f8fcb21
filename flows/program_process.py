"""Run one program as `python <entrypoint>` and stream its merged output into the job log.

This runs inside a Ray task. The program gets a clean environment (never the
platform's own secrets), its working directory is the unpacked artifact, and
its stdout and stderr are one ordered stream.
"""

from __future__ import annotations

import io
import os
import select
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from core import layout
from core.allow_list import read_allow_list
from core.artifact import extract_artifact
from core.job_log import run_time_exceeded
from core.job_spec import JobSpec
from core.retries import ATTEMPT_VARIABLE, separator
from core.storage import Storage
from flows.dependencies import DependencyInstallError, ensure_environment, install_specs
from flows.dependencies import in_use as dependencies_in_use
from flows.launch import (
    DATA,
    FUNCTION_DATA,
    LAUNCHER_OF_THIS_WORKER,
    Confinement,
    Program,
    base_environment,
    ended_within,
    start_program,
)
from flows.log_sink import LogSink, PrefectLogMirror
from flows.node import NodeRuntime
from flows.node_scratch import held

CHUNK_BYTES = 64 * 1024
# Signals the kernel sends a process that reaches one of its limits (the memory limit is a MemoryError).
LIMIT_SIGNALS: dict[int, str] = {
    signal.SIGXCPU: "CPU time (QS_JOB_CPU_SECONDS)",
    signal.SIGXFSZ: "file size (QS_JOB_MAX_FILE_MB)",
}
WAKE_SECONDS = 0.2


@dataclass(frozen=True)
class Attempt:
    """Which attempt of the job this is (Prefect's flow retries make more than one)."""

    number: int = 1
    of: int = 1

    @property
    def is_last(self) -> bool:
        return self.number >= self.of


def warm_up(runtime: NodeRuntime) -> None:
    """Run once per Ray worker ahead of jobs: import the task engine and start the launcher."""
    from prefect.task_engine import run_task_sync  # noqa: F401

    if runtime.warm_interpreters:
        LAUNCHER_OF_THIS_WORKER.start(runtime.runtime_python, runtime.launcher_modules)


class DataArea:
    """A data area of the job on this node: its DATA_PATH, or a provider program's shared area.

    On a shared local disk it is the storage area itself. On object storage it is
    a scratch copy: pulled before the program starts and pushed back (new, changed
    and deleted files) before the job can turn terminal. In a user area other jobs'
    arguments and results are neither pulled nor pushed; only this job's are.
    """

    JOB_FILES = ("arguments/", "results/")

    def __init__(
        self,
        storage: Storage,
        area: str,
        scratch: Path,
        skipped: tuple[str, ...] = (),
        fetched: str | None = None,
        published: str | None = None,
    ) -> None:
        self.storage = storage
        self.area = area
        self.skipped = skipped
        self.fetched = fetched  # relative path pulled although skipped (the job's arguments)
        self.published = published  # relative path pushed although skipped (the job's result)
        shared = storage.local_path(area)
        self.path = shared if shared is not None else scratch
        self.snapshot: dict[str, tuple[int, int]] = {}

    @classmethod
    def of_job(cls, storage: Storage, spec: JobSpec, scratch: Path) -> DataArea:
        start = len(spec.data_area) + 1
        return cls(
            storage, spec.data_area, scratch, cls.JOB_FILES, spec.arguments_key[start:], spec.results_key[start:]
        )

    def pull(self) -> Path:
        if self.storage.is_local:
            self.path.mkdir(parents=True, exist_ok=True)
            return self.path
        self.path.mkdir(parents=True, exist_ok=True)
        prefix = self.storage.path(self.area) + "/"
        for remote in self.storage.fs.find(prefix):
            relative = str(remote)[len(prefix) :]
            if relative and not relative.startswith(self.skipped):
                self._fetch(relative)
        if self.fetched is not None:
            self._fetch(self.fetched)
        self.snapshot = self._scan()
        return self.path

    def _fetch(self, relative: str) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        self.storage.download(f"{self.area}/{relative}", target)

    def _scan(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for file in self.path.rglob("*"):
            if file.is_file() and not file.is_symlink():
                status = file.stat()
                found[file.relative_to(self.path).as_posix()] = (status.st_size, status.st_mtime_ns)
        return found

    def push(self, progress: Callable[[int], None] = lambda _amount: None) -> None:
        if self.storage.is_local:
            return
        current = self._scan()
        for relative, signature in current.items():
            shared = relative == self.published or not relative.startswith(self.skipped)
            if shared and self.snapshot.get(relative) != signature:
                self.storage.upload(self.path / relative, f"{self.area}/{relative}", progress)
                progress(1)
        for relative in self.snapshot.keys() - current.keys():
            if not relative.startswith(self.skipped):
                self.storage.delete(f"{self.area}/{relative}")
                progress(1)


def program_environment(
    spec: JobSpec,
    data_dir: Path,
    runtime: NodeRuntime,
    packages: Path | None = None,
    function_data: Path | None = None,
    attempt: Attempt = Attempt(),
) -> dict[str, str]:
    """System variables first, then the program's own env_vars on top (docs/architecture.md, Program environment).

    A confined program sees its data areas at /data and /function_data, whatever their paths on the
    node. The directory of the program's dependencies, if any, leads PYTHONPATH (fresh interpreter)
    and a program forked by the launcher gets PYTHONPATH on sys.path the same way (flows/launcher.py).
    """
    if runtime.sandbox:
        data_dir, function_data = DATA, FUNCTION_DATA if function_data is not None else None
    env = base_environment(runtime.runtime_python)
    env.update(spec.env)
    env.update(
        {
            "DATA_PATH": str(data_dir),
            "ARGUMENTS_PATH": str(data_dir / "arguments" / f"{spec.job_id}.json"),
            "RESULTS_PATH": str(data_dir / "results" / f"{spec.job_id}.json"),
            "PYTHONUNBUFFERED": "1",
            ATTEMPT_VARIABLE: str(attempt.number),
        }
    )
    if runtime.sandbox:
        # A confined program's `ray.init()` starts a Ray of its own inside its sandbox.
        env["HOME"] = "/tmp"
    else:
        env["RAY_ADDRESS"] = runtime.ray_cluster
    if function_data is not None:
        env["FUNCTION_DATA_PATH"] = str(function_data)
    env.update(spec.program_env)
    if packages is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(packages), env.get("PYTHONPATH")]))
    return env


def install_dependencies(spec: JobSpec, runtime: NodeRuntime, sink: LogSink) -> Path | None:
    """The node's cached directory of the job's packages (built on first use), logged to the job."""
    if not spec.dependencies:
        return None
    wanted = install_specs(spec.dependencies, read_allow_list(runtime.allowed_dependencies_file))
    return ensure_environment(
        wanted, runtime.scratch / "envs", runtime.runtime_python, log=lambda line: sink.write(f"{line}\n".encode())
    )


class RunTimeExceeded(Exception):
    """The program reached the job's maximum run time (`QS_JOB_MAX_SECONDS`) and was stopped."""


def run_program_process(
    spec: JobSpec,
    storage: Storage,
    runtime: NodeRuntime,
    mirror: PrefectLogMirror | None = None,
    attempt: Attempt = Attempt(),
) -> int:
    """Run the program to its end; returns its exit code. Output is persisted before returning.

    A stop (Ray calls SIGINT's handler in this, the task's main thread) is only recorded from here
    on: the program is not started once it is, and is ended where its loops look, so no stop can
    cut short the saving of what the program wrote, or of its log.
    """
    with stops_deferred() as stop, held(runtime.scratch / spec.job_id) as workdir:
        sink = LogSink(storage, spec.logs_key, workdir / "logs.txt", runtime.logs_size_limit, mirror)
        if attempt.number > 1:
            sink.write(separator(attempt.number, attempt.of).encode())
        try:
            return _run(spec, storage, runtime, workdir, sink, attempt, stop)
        except (KeyboardInterrupt, RunTimeExceeded, ResultTooLarge):
            raise  # the log says why already
        except DependencyInstallError as error:
            sink.write(f"{error}\n".encode())  # pip's own words; a traceback would only add noise
            raise
        except Exception:
            # An infrastructure failure is the job's failure: its traceback goes to the job log.
            sink.write(traceback.format_exc().encode())
            raise
        finally:
            sink.close()
            shutil.rmtree(workdir, ignore_errors=True)


def _run(
    spec: JobSpec,
    storage: Storage,
    runtime: NodeRuntime,
    workdir: Path,
    sink: LogSink,
    attempt: Attempt,
    stop: threading.Event,
) -> int:
    artifact_dir = workdir / "artifact"
    tar_path = workdir / "artifact.tar"
    storage.download(spec.artifact_key, tar_path)
    extract_artifact(tar_path, artifact_dir)
    tar_path.unlink()
    _unless_stopped(stop)
    packages = install_dependencies(spec, runtime, sink)
    _unless_stopped(stop)

    areas = [DataArea.of_job(storage, spec, workdir / "data")]
    if spec.provider_area is not None:
        areas.append(DataArea(storage, spec.provider_area, workdir / "function_data"))
    data_dir, *function_data = [area.pull() for area in areas]
    (data_dir / "arguments").mkdir(parents=True, exist_ok=True)
    (data_dir / "results").mkdir(parents=True, exist_ok=True)

    function_dir = function_data[0] if function_data else None
    confinement = Confinement(runtime, workdir, artifact_dir, data_dir, function_dir) if runtime.sandbox else None
    env = program_environment(spec, data_dir, runtime, packages, function_dir, attempt)
    _unless_stopped(stop)
    with dependencies_in_use(packages):
        process = start_program(spec, artifact_dir, env, runtime, packages, confinement)
        output = cast(io.BufferedReader, process.stdout)
        # The program's own run time: what it waited for before (a Ray slot, its files, the start of
        # its worker's launcher) does not count.
        watch = Watch(stop, runtime.max_run_seconds)
        ended: KeyboardInterrupt | RunTimeExceeded | None = None
        try:
            _pump(output, sink, watch)
            exit_code = _wait(process, watch)
        except (KeyboardInterrupt, RunTimeExceeded) as reason:
            # A stop or the run time's end: end the program now, but keep its last output and what it wrote.
            ended = reason
            exit_code = _end(process)
            _pump(output, sink)
            if isinstance(reason, RunTimeExceeded):
                sink.write(f"{run_time_exceeded(runtime.max_run_seconds)}\n".encode())
        except BaseException:
            _end(process)  # whatever failed here (a full disk), the program does not outlive its task
            raise
        finally:
            output.close()
    refused = refuse_oversized_result(data_dir / "results" / f"{spec.job_id}.json", runtime.max_result_bytes)
    if refused is not None:
        sink.write(f"{refused}\n".encode())
    with copy_back_heartbeat(storage, spec.job_id, runtime.stop_grace_seconds / 4) as progress:
        for area in areas:
            area.push(progress)
    if ended is not None:
        raise ended
    if refused is not None:
        raise refused
    if -exit_code in LIMIT_SIGNALS:
        sink.write(f"The program reached the job's {LIMIT_SIGNALS[-exit_code]} limit and was ended.\n".encode())
    return exit_code


class ResultTooLarge(RuntimeError):
    """The program saved a result over the job's result cap (`QS_MAX_RESULT_BYTES`)."""


def refuse_oversized_result(result: Path, limit: int) -> ResultTooLarge | None:
    """Remove a result over the cap before it is saved anywhere; the job fails saying why."""
    size = result.stat().st_size if result.is_file() else 0
    if size <= limit:
        return None
    result.unlink()
    return ResultTooLarge(
        f"The result is {size} bytes, more than the {limit} bytes a job may save (QS_MAX_RESULT_BYTES): "
        "it was not saved."
    )


@contextmanager
def stops_deferred() -> Iterator[threading.Event]:
    """Ray delivers a stop (`ray.cancel`) by calling SIGINT's handler in the task's main thread;
    within this the handler only records it. Outside a main thread stops stay KeyboardInterrupts."""
    stop = threading.Event()
    try:
        previous = signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    except ValueError:
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


class Watch:
    """What ends a program early: a stop, or reaching the job's run time (`QS_JOB_MAX_SECONDS`)."""

    def __init__(self, stop: threading.Event, max_run_seconds: float) -> None:
        self.stop = stop
        self.deadline = time.monotonic() + max_run_seconds if max_run_seconds else None

    def check(self) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise RunTimeExceeded


class Progress:
    """How much of a copy-back has moved: bytes sent plus files done."""

    def __init__(self) -> None:
        self.moved = 0

    def __call__(self, amount: int) -> None:
        self.moved += amount


@contextmanager
def copy_back_heartbeat(storage: Storage, job_id: str, every: float) -> Iterator[Progress]:
    """Publish the copy-back's progress under the job's copy-back key while it changes:
    flows/cancellation.py does not kill a stopped job's task while it moves, and does once it
    stalls. The key is written only on change, at most every `every` seconds. On a local disk
    there is no copy-back (the data area is the storage itself), so nothing is published."""
    progress = Progress()
    if storage.is_local:
        yield progress
        return
    key = layout.job_copy_back(job_id)
    done = threading.Event()

    def beat() -> None:
        published = -1
        while not done.wait(every):
            if progress.moved != published:
                published = progress.moved
                try:
                    storage.put_bytes(key, str(published).encode())
                except Exception:  # a missed beat only shortens the wait
                    pass

    beating = threading.Thread(target=beat, name="copy-back-heartbeat", daemon=True)
    beating.start()
    try:
        yield progress
    finally:
        done.set()
        beating.join()
        try:
            storage.delete(key)
        except Exception:  # the key only matters while a stop waits; the job folder goes with the job
            pass


def _unless_stopped(stop: threading.Event) -> None:
    """Between the steps that prepare a job: stopped meanwhile, it goes no further (never starts)."""
    if stop.is_set():
        raise KeyboardInterrupt


def _end(process: Program) -> int:
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the program leads its own session: its children go too
    except ProcessLookupError:
        pass  # it had ended already
    return process.wait()


def _wait(process: Program, watch: Watch) -> int:
    """The program's exit code. A program may close its output and live on: it is still held to
    its run time, and a stop is still seen, while it does."""
    while (exit_code := ended_within(process, WAKE_SECONDS)) is None:
        watch.check()
    return exit_code


def _pump(output: io.BufferedReader, sink: LogSink, watch: Watch | None = None) -> None:
    """Copy the program's output to the log until it ends. The wait wakes every WAKE_SECONDS so
    that a stop, or the end of its run time, is seen even when the program is silent."""
    while True:
        if watch is not None:
            watch.check()
        ready, _, _ = select.select([output], [], [], WAKE_SECONDS)
        if ready:
            chunk = output.read1(CHUNK_BYTES)
            if not chunk:
                return
            sink.write(chunk)
