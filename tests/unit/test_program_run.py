"""A job's program run to its end in this process, as its Ray task runs it: stops, run time, result
cap and copy-back, on fsspec's in-memory filesystem (an object store stand-in)."""

from __future__ import annotations

import _thread
import io
import subprocess
import tarfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from core import layout
from core.job_spec import JobSpec
from core.log_reader import read_log
from core.settings import REPO_ROOT
from core.storage import Storage
from flows import cancellation
from flows.node import NodeRuntime
from flows.program_process import (
    ResultTooLarge,
    RunTimeExceeded,
    Watch,
    _wait,
    copy_back_heartbeat,
    run_program_process,
)

RUNTIME_PYTHON = REPO_ROOT / ".venv-runtime" / "bin" / "python"


def runtime(scratch: Path, **changes: Any) -> NodeRuntime:
    settings: dict[str, Any] = {
        "runtime_python": RUNTIME_PYTHON,
        "scratch": scratch,
        "warm_interpreters": False,
        "launcher_modules": [],
        "sandbox": False,
        "sandbox_uid": 0,
        "limits": {},
        "tmp_mb": 64,
        "allowed_dependencies_file": scratch / "allowed.txt",
        "ray_cluster": "127.0.0.1:1",
        "job_num_cpus": 1,
        "max_run_seconds": 0,
        "max_result_bytes": 1_000_000,
        "stop_grace_seconds": 10,
        "logs_size_limit": 100_000,
        "prefect_log_lines": 100,
        "storage_block": "unused",
    }
    return NodeRuntime(**{**settings, **changes})


def stopping_download(self: Storage, key: str, target: Path) -> None:
    """A download during which the job is stopped (how Ray delivers ray.cancel)."""
    _thread.interrupt_main()
    Storage.download(self, key, target)


class SlowStorage(Storage):
    """An object store whose uploads take a while, and which can call a hook on the first one."""

    def __init__(self) -> None:
        super().__init__(f"memory://qs-{uuid.uuid4().hex}")
        self.on_first_upload: Any = None
        self.uploads = 0

    def upload(self, source: Path, key: str, progress: Any = None) -> None:
        if key.startswith("users/"):
            self.uploads += 1
            if self.uploads == 1 and self.on_first_upload is not None:
                self.on_first_upload()
            time.sleep(0.02)
        super().upload(source, key, progress)


def job(storage: Storage, source: str) -> JobSpec:
    spec = JobSpec(
        job_id=f"job-{uuid.uuid4().hex[:8]}", program_title="p", entrypoint="main.py", data_area="users/alice", env={}
    )
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w") as archive:
        data = source.encode()
        info = tarfile.TarInfo("main.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    storage.put_bytes(spec.artifact_key, packed.getvalue())
    storage.put_bytes(spec.arguments_key, b"{}")
    return spec


WRITES_AND_EXITS = (
    "import os\n"
    "for index in range(20):\n"
    "    open(os.path.join(os.environ['DATA_PATH'], f'out-{index}.txt'), 'w').write(str(index))\n"
    "print('written', flush=True)\n"
)


def saved_outputs(storage: Storage) -> int:
    return sum(storage.exists(f"users/alice/out-{index}.txt") for index in range(20))


def test_a_stop_landing_during_the_copy_back_saves_every_file(tmp_path: Path) -> None:
    storage = SlowStorage()
    spec = job(storage, WRITES_AND_EXITS)
    storage.on_first_upload = _thread.interrupt_main  # how Ray delivers ray.cancel(force=False)
    exit_code = run_program_process(spec, storage, runtime(tmp_path))
    assert exit_code == 0  # the program had ended: the flow sees the stop and settles the job STOPPED
    assert saved_outputs(storage) == 20
    assert not storage.exists(layout.job_copy_back(spec.job_id))


def test_a_stop_while_the_program_runs_ends_it_and_keeps_what_it_wrote(tmp_path: Path) -> None:
    storage = SlowStorage()
    spec = job(storage, WRITES_AND_EXITS.replace("flush=True)\n", "flush=True)\nimport time\ntime.sleep(60)\n"))
    last_file = tmp_path / spec.job_id / "data" / "out-19.txt"

    def stop_once_written() -> None:
        while not last_file.exists():
            time.sleep(0.01)
        _thread.interrupt_main()

    threading.Thread(target=stop_once_written, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_program_process(spec, storage, runtime(tmp_path))
    assert time.monotonic() - started < 30
    assert saved_outputs(storage) == 20
    assert "written" in (read_log(storage, spec.job_id, 100_000) or "")


def test_an_oversized_result_is_refused_and_the_job_fails_saying_why(tmp_path: Path) -> None:
    storage = SlowStorage()
    source = "import os\nopen(os.environ['RESULTS_PATH'], 'w').write('[' + '1,' * 999 + '1]')\n"
    spec = job(storage, source)
    with pytest.raises(ResultTooLarge, match="more than the 1000 bytes"):
        run_program_process(spec, storage, runtime(tmp_path, max_result_bytes=1000))
    assert not storage.exists(spec.results_key)
    log = read_log(storage, spec.job_id, 100_000) or ""
    assert "QS_MAX_RESULT_BYTES" in log and "Traceback" not in log


def test_a_result_under_the_cap_is_saved(tmp_path: Path) -> None:
    storage = SlowStorage()
    spec = job(storage, "import os\nopen(os.environ['RESULTS_PATH'], 'w').write('[1, 2]')\n")
    assert run_program_process(spec, storage, runtime(tmp_path, max_result_bytes=1000)) == 0
    assert storage.get_bytes(spec.results_key) == b"[1, 2]"


def test_a_program_that_closes_its_output_is_still_held_to_its_run_time() -> None:
    source = "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(60)\n"
    process = subprocess.Popen([str(RUNTIME_PYTHON), "-c", source], stdout=subprocess.PIPE, start_new_session=True)
    started = time.monotonic()
    try:
        with pytest.raises(RunTimeExceeded):
            _wait(process, Watch(threading.Event(), 0.5))
        assert time.monotonic() - started < 5
    finally:
        process.kill()
        process.wait()


def test_the_copy_back_heartbeat_follows_the_bytes_moved_and_is_gone_after(tmp_path: Path) -> None:
    storage = SlowStorage()
    beats: list[bytes] = []
    key = layout.job_copy_back("job-1")
    real_put = storage.put_bytes

    def put_bytes(written: str, data: bytes) -> None:
        if written == key:
            beats.append(data)
        real_put(written, data)

    storage.put_bytes = put_bytes  # type: ignore[method-assign]
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 3_000_000)
    with copy_back_heartbeat(storage, "job-1", every=0.02) as progress:
        storage.upload(source, "users/alice/big.bin", progress)
        time.sleep(0.2)
        assert storage.get_bytes(key) == b"3000000"
        assert beats[-1] == b"3000000"
        quiet = len(beats)
        time.sleep(0.2)
        assert len(beats) == quiet, "no progress, no new beat"
        progress(1)
        time.sleep(0.1)
        assert storage.get_bytes(key) == b"3000001"
    assert not storage.exists(key)
    told: list[int] = []
    storage.upload(source, "users/alice/again.bin", told.append)
    assert told == [1024 * 1024, 1024 * 1024, 3_000_000 - 2 * 1024 * 1024], "each block as it goes, not once at the end"


def test_a_stop_before_the_program_starts_means_it_never_does(tmp_path: Path) -> None:
    storage = SlowStorage()
    spec = job(storage, WRITES_AND_EXITS)
    storage.put_bytes("users/alice/pulled.txt", b"pulled before the start")
    with pytest.raises(KeyboardInterrupt):
        with mock.patch.object(SlowStorage, "download", stopping_download):
            run_program_process(spec, storage, runtime(tmp_path))
    assert saved_outputs(storage) == 0
    assert not (tmp_path / spec.job_id).exists()


def test_a_stopped_task_is_killed_only_once_its_copy_back_stops_beating(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, bool, int]] = []
    beats = iter([b"1", b"2", b"3"])
    looked = 0

    def heartbeat() -> bytes | None:
        nonlocal looked
        looked += 1
        return next(beats, None)  # three looks find it saving, then it is done beating

    monkeypatch.setattr(cancellation.ray, "cancel", lambda ref, force: calls.append((ref, force, looked)))
    cancellation.register("run-1", cancellation.Task("ref-1", heartbeat, grace_seconds=0.05))
    try:
        cancellation.request("run-1")
        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == [("ref-1", False, 0), ("ref-1", True, 4)]
    finally:
        cancellation.unregister("run-1")


def test_a_task_that_ended_is_never_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(cancellation.ray, "cancel", lambda ref, force: calls.append(force))
    cancellation.register("run-2", cancellation.Task("ref-2", lambda: None, grace_seconds=0.05))
    cancellation.request("run-2")
    cancellation.unregister("run-2")
    time.sleep(0.2)
    assert calls == [False]
