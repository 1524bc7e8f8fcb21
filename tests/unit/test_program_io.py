"""The job's data-area sync and log sink, on fsspec's in-memory filesystem (an object store stand-in)."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from pathlib import Path

import pytest

from core import layout
from core.job_log import truncation_notice
from core.job_spec import JobSpec
from core.log_reader import read_log
from core.storage import Storage
from flows.log_sink import MIRROR_LINE_BYTES, LogSink, PrefectLogMirror
from flows.program_process import DataArea, RunTimeExceeded, Watch, _pump


def memory_storage() -> Storage:
    return Storage(f"memory://qs-{uuid.uuid4().hex}")


def spec(job_id: str = "job-1") -> JobSpec:
    return JobSpec(job_id=job_id, program_title="p", entrypoint="main.py", data_area="users/alice", env={})


def test_pull_skips_other_jobs_and_push_sends_changes_and_deletions(tmp_path: Path) -> None:
    storage = memory_storage()
    job = spec()
    storage.put_bytes("users/alice/kept.txt", b"kept")
    storage.put_bytes("users/alice/doomed.txt", b"doomed")
    storage.put_bytes("users/alice/arguments/other-job.json", b"{}")
    storage.put_bytes("users/alice/results/other-job.json", b"{}")
    storage.put_bytes(job.arguments_key, b'{"x": 1}')
    storage.put_bytes("users/bob/secret.txt", b"not alice's")

    area = DataArea.of_job(storage, job, tmp_path / "data")
    local = area.pull()
    assert (local / "kept.txt").read_bytes() == b"kept"
    assert (local / "arguments" / "job-1.json").read_bytes() == b'{"x": 1}'
    assert not (local / "arguments" / "other-job.json").exists()
    assert not (local / "results").exists()
    assert not list(tmp_path.rglob("secret.txt"))

    (local / "doomed.txt").unlink()
    (local / "new.txt").write_bytes(b"new")
    (local / "results").mkdir()
    (local / "results" / "job-1.json").write_bytes(b'{"done": true}')
    (local / "arguments" / "job-1.json").write_bytes(b"tampered")
    area.push()

    assert storage.get_bytes("users/alice/new.txt") == b"new"
    assert storage.get_bytes("users/alice/doomed.txt") is None
    assert storage.get_bytes(job.results_key) == b'{"done": true}'
    assert storage.get_bytes(job.arguments_key) == b'{"x": 1}'  # arguments are never written back
    assert storage.get_bytes("users/alice/kept.txt") == b"kept"


def test_provider_area_syncs_everything_including_job_like_folders(tmp_path: Path) -> None:
    storage = memory_storage()
    key = layout.provider_area("acme", "solver")
    storage.put_bytes(f"{key}/model.json", b"{}")
    storage.put_bytes(f"{key}/results/shared.json", b"[]")  # no job files here: nothing is skipped

    area = DataArea(storage, key, tmp_path / "function_data")
    local = area.pull()
    assert (local / "model.json").exists() and (local / "results" / "shared.json").exists()
    (local / "cache.bin").write_bytes(b"cached")
    area.push()
    assert storage.get_bytes(f"{key}/cache.bin") == b"cached"


def test_log_sink_keeps_the_newest_lines_under_the_cap(tmp_path: Path) -> None:
    storage = memory_storage()
    key = layout.job_logs("job-2")
    sink = LogSink(storage, key, tmp_path / "logs.txt", size_limit=100)
    for index in range(50):
        sink.write(f"line {index}\n".encode())
    sink.close()
    text = read_log(storage, "job-2", 100) or ""
    lines = text.splitlines()
    assert lines[0].startswith("[Logs exceeded maximum allowed size (100 bytes)")
    assert lines[-1] == "line 49"
    assert all(line.startswith("line ") for line in lines[1:])  # the cut starts on a whole line
    assert len(text) <= 100 + len(lines[0]) + 1


def test_a_running_jobs_log_never_holds_more_than_twice_its_cap(tmp_path: Path) -> None:
    """On local storage, where the log is one file (object storage: tests/unit/test_log_parts.py)."""
    storage = Storage(f"file://{tmp_path / 'root'}")
    path = storage.local_path(layout.job_logs("job-3"))
    assert path is not None
    sink = LogSink(storage, layout.job_logs("job-3"), tmp_path / "logs.txt", size_limit=100)
    for index in range(1000):
        sink.write(f"line {index}\n".encode())
        assert path.stat().st_size <= 2 * 100 + len(truncation_notice(100)) + 10, index
    text = path.read_text()
    assert text.startswith("[Logs exceeded maximum allowed size (100 bytes)") and text.endswith("line 999\n")
    assert text.count("[Logs exceeded") == 1
    sink.close()


def test_the_prefect_log_copy_keeps_little_of_output_without_newlines() -> None:
    emitted: list[str] = []
    logger = logging.getLogger("mirror-test")
    logger.info = lambda message, *args: emitted.append(message)  # type: ignore[method-assign]
    mirror = PrefectLogMirror(logger, max_lines=3)
    for _ in range(64):
        mirror.feed(b"x" * 16 * 1024)  # 1 MiB, no newline
        assert len(mirror.pending) <= MIRROR_LINE_BYTES
    assert len(emitted) == 3 and all(len(line) == MIRROR_LINE_BYTES for line in emitted)
    assert mirror.pending == b"", "past its lines it keeps nothing"


def test_a_silent_program_past_its_deadline_is_stopped(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    sink = LogSink(memory_storage(), layout.job_logs("job-4"), tmp_path / "logs.txt", size_limit=100)
    try:
        with os.fdopen(read_end, "rb") as output, pytest.raises(RunTimeExceeded):
            _pump(output, sink, Watch(threading.Event(), 0.2))  # type: ignore[arg-type]
    finally:
        os.close(write_end)
        sink.close()
