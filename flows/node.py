"""What a node needs to run programs, fixed when the executor starts.

The executor builds one `NodeRuntime` from its settings and hands it to every job's
flow run and Ray task (it travels with the task, so a Ray worker reads no settings
of its own). The job itself is described by its `JobSpec`, written by the gateway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from pydantic import BaseModel

from blocks.storage import block_name
from core.settings import Settings


class NodeRuntime(BaseModel):
    runtime_python: Path  # the interpreter that runs programs
    scratch: Path  # where jobs unpack, and where dependency sets are cached
    warm_interpreters: bool  # fork programs from the launcher
    launcher_modules: list[str]  # what the launcher imports first
    sandbox: bool  # confine each program to its job
    sandbox_uid: int
    limits: dict[str, int]  # per job: memory_mb, processes, open_files, file_mb, cpu_seconds
    tmp_mb: int
    allowed_dependencies_file: Path
    ray_cluster: str
    job_num_cpus: float
    max_run_seconds: int  # 0: no limit
    max_result_bytes: int
    stop_grace_seconds: float
    logs_size_limit: int
    prefect_log_lines: int
    storage_block: str  # the Prefect block that says where storage is

    @classmethod
    def of(cls, settings: Settings) -> NodeRuntime:
        return cls(
            runtime_python=settings.runtime_python,
            scratch=settings.scratch,
            warm_interpreters=settings.warm_interpreters,
            launcher_modules=[name.strip() for name in settings.launcher_modules.split(",") if name.strip()],
            sandbox=settings.sandbox,
            sandbox_uid=settings.sandbox_uid,
            limits={
                "memory_mb": settings.job_memory_mb,
                "processes": settings.job_max_processes,
                "open_files": settings.job_max_open_files,
                "file_mb": settings.job_max_file_mb,
                "cpu_seconds": settings.job_cpu_seconds,
            },
            tmp_mb=settings.job_tmp_mb,
            allowed_dependencies_file=settings.allowed_dependencies_file,
            ray_cluster=settings.ray_cluster,
            job_num_cpus=settings.job_num_cpus,
            max_run_seconds=settings.job_max_seconds,
            max_result_bytes=settings.max_result_bytes,
            stop_grace_seconds=settings.stop_grace_seconds,
            logs_size_limit=settings.logs_size_limit,
            prefect_log_lines=settings.prefect_log_lines,
            storage_block=block_name(settings),
        )


_current: ContextVar[NodeRuntime | None] = ContextVar("node_runtime", default=None)


@contextmanager
def serving(runtime: NodeRuntime) -> Iterator[None]:
    """Flow runs started in this context (the executor's threads) run on `runtime`."""
    token = _current.set(runtime)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> NodeRuntime:
    """The executor's runtime; a flow run started by any other Prefect worker builds one from its
    own `QS_*` environment, as every entry point does."""
    return _current.get() or NodeRuntime.of(Settings())
