"""The storage layer's streaming on an object store stand-in (fsspec's memory filesystem)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from core.storage import READ_BLOCK, Storage


def memory_storage() -> Storage:
    return Storage(f"memory://qs-{uuid.uuid4().hex}")


def test_stream_returns_every_byte_in_order_across_blocks() -> None:
    storage = memory_storage()
    data = os.urandom(2 * READ_BLOCK + 12345)
    storage.put_bytes("users/a/big.bin", data)
    chunks = list(storage.stream("users/a/big.bin"))
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= READ_BLOCK


def test_stream_of_a_missing_key_raises() -> None:
    with pytest.raises(FileNotFoundError):
        list(memory_storage().stream("users/a/missing.bin"))


def test_abandoned_stream_stops_its_fetcher() -> None:
    storage = memory_storage()
    storage.put_bytes("users/a/big.bin", os.urandom(4 * READ_BLOCK))
    stream = storage.stream("users/a/big.bin")
    next(stream)
    stream.close()  # the client hung up
    deadline = time.monotonic() + 3
    while any(thread.name == "storage-prefetch" for thread in threading.enumerate()):
        assert time.monotonic() < deadline, "prefetch thread still running"
        time.sleep(0.05)


def test_writer_is_all_or_nothing_on_local_disk(tmp_path: Path) -> None:
    storage = Storage(f"file://{tmp_path / 'root'}")
    storage.put_bytes("users/a/x.bin", b"old")
    writer = storage.open_writer("users/a/x.bin")
    writer.write(b"half of a new version")
    assert storage.get_bytes("users/a/x.bin") == b"old"  # readers see the old object meanwhile
    writer.discard()
    assert storage.get_bytes("users/a/x.bin") == b"old"

    writer = storage.open_writer("users/a/x.bin")
    writer.write(b"new")
    writer.commit()
    assert storage.get_bytes("users/a/x.bin") == b"new"
    assert sorted(path.name for path in (tmp_path / "root").rglob("*") if path.is_file()) == ["x.bin"]
