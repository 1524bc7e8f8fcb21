"""Run one program as `python <entrypoint>` and stream its merged output into the job log.

This runs inside a Ray task. The program gets a clean environment (never the
platform's own secrets), its working directory is the unpacked artifact, and
its stdout and stderr are one ordered stream.
"""

from __future__ import annotations

import io
import logging
import os
import select
import shutil
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from core.allow_list import read_allow_list
from core.artifact import extract_artifact
from core.job_log import PRIVATE, run_time_exceeded, truncation_notice
from core.job_spec import JobSpec
from core.retries import ATTEMPT_VARIABLE, separator
from core.storage import Storage
from flows.dependencies import DependencyInstallError, ensure_environment, install_specs
from flows.launch import DATA, FUNCTION_DATA, LAUNCHER_OF_THIS_WORKER, Confinement, base_environment, start_program
from flows.node import NodeRuntime

CHUNK_BYTES = 64 * 1024
# Signals the kernel sends a process that reaches one of its limits (the memory limit is a MemoryError).
LIMIT_SIGNALS: dict[int, str] = {
    signal.SIGXCPU: "CPU time (QS_JOB_CPU_SECONDS)",
    signal.SIGXFSZ: "file size (QS_JOB_MAX_FILE_MB)",
}
REMOTE_FLUSH_SECONDS = 0.5
MIRROR_LINE_BYTES = 64 * 1024  # the longest line copied to the Prefect logs
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


class PrefectLogMirror:
    """Copies the first `max_lines` lines of program output to the flow run's Prefect logs (for the UI).

    The job log in storage stays the source of truth for the API; this is a view.
    """

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[logging.Logger], max_lines: int) -> None:
        self.logger = logger
        self.max_lines = max_lines
        self.sent = 0
        self.pending = b""

    def feed(self, data: bytes) -> None:
        if self.sent > self.max_lines:
            return  # past the notice nothing more is copied: nothing more is kept either
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        if len(self.pending) > MIRROR_LINE_BYTES:  # output without newlines: cut into lines of the cap
            lines.append(self.pending[:MIRROR_LINE_BYTES])
            self.pending = b""
        for line in lines:
            self._emit(line)

    def close(self) -> None:
        if self.pending:
            self._emit(self.pending)
            self.pending = b""

    def _emit(self, line: bytes) -> None:
        if line[: len(PRIVATE)].lower() == PRIVATE.encode():
            return  # a provider's private line: only its admins read it, through the gateway
        if self.sent < self.max_lines:
            self.logger.info(line.decode("utf-8", errors="replace"))
        elif self.sent == self.max_lines:
            self.logger.warning("Further program output is only in the job's log (GET /api/v1/jobs/{id}/logs/).")
        self.sent += 1


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

    def push(self) -> None:
        if self.storage.is_local:
            return
        current = self._scan()
        for relative, signature in current.items():
            shared = relative == self.published or not relative.startswith(self.skipped)
            if shared and self.snapshot.get(relative) != signature:
                self.storage.upload(self.path / relative, f"{self.area}/{relative}")
        for relative in self.snapshot.keys() - current.keys():
            if not relative.startswith(self.skipped):
                self.storage.delete(f"{self.area}/{relative}")


class LogSink:
    """Appends program output to the job's log key, live.

    On local storage the log key is a file appended to directly (readers see each
    chunk at once). On object storage the output goes to a scratch file which a
    background thread uploads whole every REMOTE_FLUSH_SECONDS while it changes,
    and once more at close. While the job runs, a log past twice its cap is cut
    back to its newest `size_limit` bytes (a notice line first), so it never holds
    more than that, on disk or in an upload.
    """

    def __init__(
        self, storage: Storage, key: str, scratch_file: Path, size_limit: int, mirror: PrefectLogMirror | None = None
    ) -> None:
        self.storage = storage
        self.mirror = mirror
        self.key = key
        self.size_limit = size_limit
        local = storage.local_path(key)
        self.path = local if local is not None else scratch_file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if local is None and storage.exists(key):  # an earlier attempt's output: appended to, not replaced
            storage.download(key, self.path)
        self.handle: IO[bytes] = open(self.path, "ab")
        self.size = self.handle.tell()
        self.dirty = threading.Event()
        self.closed = threading.Event()
        self.uploader: threading.Thread | None = None
        if not storage.is_local:
            self.uploader = threading.Thread(target=self._upload_while_open, name="log-upload", daemon=True)
            self.uploader.start()

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.handle.flush()
        self.size += len(data)
        if self.size > 2 * self.size_limit:
            self.handle.close()
            self._cap()
            self.handle = open(self.path, "ab")
            self.size = self.handle.tell()
        self.dirty.set()
        if self.mirror is not None:
            self.mirror.feed(data)

    def _upload_while_open(self) -> None:
        while not self.closed.wait(REMOTE_FLUSH_SECONDS):
            if self.dirty.is_set():
                self.dirty.clear()
                self.storage.upload(self.path, self.key)

    def close(self) -> None:
        self.handle.close()
        self.closed.set()
        if self.uploader is not None:
            self.uploader.join()
        if self.mirror is not None:
            self.mirror.close()
        self._cap()
        if not self.storage.is_local:
            self.storage.upload(self.path, self.key)

    def _cap(self) -> None:
        """Keep only the newest `size_limit` bytes, starting on a whole line."""
        size = self.path.stat().st_size
        if size <= self.size_limit:
            return
        with open(self.path, "rb") as handle:
            handle.seek(size - self.size_limit)
            tail = handle.read()
        newline = tail.find(b"\n")
        tail = tail[newline + 1 :] if newline >= 0 else tail
        if tail.startswith(truncation_notice(self.size_limit).encode()):
            tail = tail.split(b"\n", 1)[1]  # cut again: one notice is enough
        # Replaced at once: a reader (the gateway's log tail) sees the old log or the new, never half.
        cut = self.path.with_name(self.path.name + ".cut")
        cut.write_bytes(truncation_notice(self.size_limit).encode() + tail)
        os.replace(cut, self.path)


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
    """Run the program to its end; returns its exit code. Output is persisted before returning."""
    workdir = runtime.scratch / spec.job_id
    sink = LogSink(storage, spec.logs_key, workdir / "logs.txt", runtime.logs_size_limit, mirror)
    if attempt.number > 1:
        sink.write(separator(attempt.number, attempt.of).encode())
    try:
        return _run(spec, storage, runtime, workdir, sink, attempt)
    except RunTimeExceeded:
        raise
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


def _run(spec: JobSpec, storage: Storage, runtime: NodeRuntime, workdir: Path, sink: LogSink, attempt: Attempt) -> int:
    artifact_dir = workdir / "artifact"
    tar_path = workdir / "artifact.tar"
    workdir.mkdir(parents=True, exist_ok=True)
    storage.download(spec.artifact_key, tar_path)
    extract_artifact(tar_path, artifact_dir)
    tar_path.unlink()
    packages = install_dependencies(spec, runtime, sink)

    areas = [DataArea.of_job(storage, spec, workdir / "data")]
    if spec.provider_area is not None:
        areas.append(DataArea(storage, spec.provider_area, workdir / "function_data"))
    data_dir, *function_data = [area.pull() for area in areas]
    (data_dir / "arguments").mkdir(parents=True, exist_ok=True)
    (data_dir / "results").mkdir(parents=True, exist_ok=True)

    function_dir = function_data[0] if function_data else None
    confinement = Confinement(runtime, workdir, artifact_dir, data_dir, function_dir) if runtime.sandbox else None
    env = program_environment(spec, data_dir, runtime, packages, function_dir, attempt)
    process = start_program(spec, artifact_dir, env, runtime, packages, confinement)
    # The program's own run time: what it waited for before (a Ray slot, its files) does not count.
    deadline = time.monotonic() + runtime.max_run_seconds if runtime.max_run_seconds else None
    try:
        _pump(cast(io.BufferedReader, process.stdout), sink, deadline)
        exit_code = process.wait()
    except (KeyboardInterrupt, RunTimeExceeded) as stopped:
        # A stop (ray.cancel) or the run time's end: end the program now, but keep its last output
        # and what it wrote.
        os.killpg(process.pid, signal.SIGKILL)  # the program leads its own session: its children go too
        process.wait()
        _pump(cast(io.BufferedReader, process.stdout), sink)
        if isinstance(stopped, RunTimeExceeded):
            sink.write(f"{run_time_exceeded(runtime.max_run_seconds)}\n".encode())
        for area in areas:
            area.push()
        raise
    for area in areas:
        area.push()
    if -exit_code in LIMIT_SIGNALS:
        sink.write(f"The program reached the job's {LIMIT_SIGNALS[-exit_code]} limit and was ended.\n".encode())
    return exit_code


def _pump(output: io.BufferedReader, sink: LogSink, deadline: float | None = None) -> None:
    """Copy the program's output to the log until it ends. The wait wakes every WAKE_SECONDS so
    that a stop (Ray raises KeyboardInterrupt between bytecodes), or the deadline, is seen even
    when the program is silent."""
    while True:
        if deadline is not None and time.monotonic() > deadline:
            raise RunTimeExceeded
        ready, _, _ = select.select([output], [], [], WAKE_SECONDS)
        if ready:
            chunk = output.read1(CHUNK_BYTES)
            if not chunk:
                return
            sink.write(chunk)
