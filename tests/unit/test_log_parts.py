"""A job's log on object storage (fsspec's memory filesystem stands in) goes up in parts and is read
back from its newest ones; on local storage it stays one file."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from core import layout
from core.job_log import truncation_notice
from core.log_reader import log_parts, read_log
from core.retries import separator
from core.storage import Storage
from flows import log_sink
from flows.log_sink import LogSink, part_bytes

LINE = re.compile(r"line \d{5}")


def memory_storage() -> Storage:
    return Storage(f"memory://qs-{uuid.uuid4().hex}")


def stored_bytes(storage: Storage, job_id: str) -> int:
    return sum(part.size for part in log_parts(storage, layout.job_logs(job_id)))


def record_uploads(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every upload the storage is asked for, as (key, bytes sent)."""
    uploads: list[tuple[str, int]] = []
    upload = storage.upload

    def recording(source: Path, key: str) -> None:
        uploads.append((key, source.stat().st_size))
        upload(source, key)

    monkeypatch.setattr(storage, "upload", recording)
    return uploads


def test_a_running_jobs_log_goes_up_in_parts_and_keeps_only_about_its_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_sink, "REMOTE_FLUSH_SECONDS", 0.005)  # uploads while the program writes
    storage = memory_storage()
    uploads = record_uploads(storage, monkeypatch)
    cap = 16 * 1024
    part = part_bytes(cap)
    sink = LogSink(storage, layout.job_logs("job-1"), tmp_path / "logs.txt", size_limit=cap)
    most = 0
    for index in range(8000):  # 88 000 bytes: over five times the cap
        sink.write(f"line {index:05d}\n".encode())
        if index % 200 == 0:
            most = max(most, stored_bytes(storage, "job-1"))
            time.sleep(0.01)
    sink.close()

    assert uploads and max(size for _, size in uploads) <= part, "only a part is ever uploaded"
    assert all(key != layout.job_logs("job-1") for key, _ in uploads), "never the whole log"
    assert 0 < most < cap + 2 * part  # at worst the growing part over "cap + a part", for a moment
    assert cap <= stored_bytes(storage, "job-1") <= cap + part
    assert log_parts(storage, layout.job_logs("job-1"))[0].number > 1, "the oldest parts were deleted"

    text = read_log(storage, "job-1", cap)
    assert text is not None
    notice, *lines = text.splitlines()
    assert notice + "\n" == truncation_notice(cap)
    assert all(LINE.fullmatch(line) for line in lines), "starts on a whole line, nothing lost between parts"
    assert [int(line[5:]) for line in lines] == list(range(8000 - len(lines), 8000))
    assert cap - 12 <= len(text) - len(notice) - 1 <= cap
    wide = read_log(storage, "job-1", 10 * cap)  # all that is left: the deleted parts still show
    assert wide is not None and wide.startswith(truncation_notice(10 * cap))
    assert all(LINE.fullmatch(line) for line in wide.splitlines()[1:]) and wide.endswith("line 07999\n")


def test_reading_a_tail_fetches_only_the_newest_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = memory_storage()
    sink = LogSink(storage, layout.job_logs("job-2"), tmp_path / "logs.txt", size_limit=16 * 1024)
    for index in range(3000):
        sink.write(f"line {index:05d}\n".encode())
    sink.close()
    parts = log_parts(storage, layout.job_logs("job-2"))
    assert len(parts) >= 4
    fetched: list[str] = []
    cat = storage.fs.cat

    def recording(paths: list[str], **options: Any) -> Any:
        fetched.extend(paths)
        return cat(paths, **options)

    monkeypatch.setattr(storage.fs, "cat", recording)
    text = read_log(storage, "job-2", 100)
    assert fetched == [parts[-1].path]
    assert text is not None and text.startswith(truncation_notice(100))
    assert text.splitlines()[1:] == [f"line {index:05d}" for index in range(2991, 3000)]


def test_a_retry_writes_its_parts_after_the_first_attempts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = memory_storage()
    key = layout.job_logs("job-3")
    first = LogSink(storage, key, tmp_path / "one" / "logs.txt", size_limit=1024 * 1024)
    for index in range(2000):
        first.write(f"line {index:05d}\n".encode())
    first.close()
    numbers = [part.number for part in log_parts(storage, key)]
    downloads: list[str] = []
    monkeypatch.setattr(storage, "download", lambda key, target: downloads.append(key))

    retry = LogSink(storage, key, tmp_path / "two" / "logs.txt", size_limit=1024 * 1024)
    retry.write(separator(2, 2).encode())
    retry.write(b"second attempt\n")
    retry.close()

    assert downloads == [], "the first attempt's output stays where it is"
    assert [part.number for part in log_parts(storage, key)] == [*numbers, numbers[-1] + 1]
    text = read_log(storage, "job-3", 1024 * 1024)
    expected = "".join(f"line {index:05d}\n" for index in range(2000)) + separator(2, 2) + "second attempt\n"
    assert text == expected


def test_a_retry_takes_over_a_log_written_whole_before_logs_came_in_parts(tmp_path: Path) -> None:
    storage = memory_storage()
    key = layout.job_logs("job-4")
    storage.put_bytes(key, b"first attempt\n")
    retry = LogSink(storage, key, tmp_path / "logs.txt", size_limit=1024)
    retry.write(b"second attempt\n")
    retry.close()
    assert not storage.exists(key)
    assert read_log(storage, "job-4", 1024) == "first attempt\nsecond attempt\n"


def test_a_job_without_output_has_an_empty_log_and_one_never_run_has_none(tmp_path: Path) -> None:
    storage = memory_storage()
    LogSink(storage, layout.job_logs("job-5"), tmp_path / "logs.txt", size_limit=1024).close()
    assert read_log(storage, "job-5", 1024) == ""
    assert read_log(storage, "never-ran", 1024) is None


def test_read_log_reads_a_single_file_log_on_local_storage(tmp_path: Path) -> None:
    storage = Storage(f"file://{tmp_path / 'root'}")
    sink = LogSink(storage, layout.job_logs("job-6"), tmp_path / "scratch" / "logs.txt", size_limit=1024 * 1024)
    for index in range(100):
        sink.write(f"line {index:05d}\n".encode())
    sink.close()
    assert log_parts(storage, layout.job_logs("job-6")) == []
    everything = "".join(f"line {index:05d}\n" for index in range(100))
    assert read_log(storage, "job-6", 1024 * 1024) == everything

    text = read_log(storage, "job-6", 105)  # cut by the reader, in the middle of a line
    assert text == truncation_notice(105) + "".join(f"line {index:05d}\n" for index in range(91, 100))
    assert read_log(storage, "never-ran", 105) is None
