"""The one storage layer: every artifact, argument, result, log and user file goes through fsspec.

A `Storage` is rooted at a URL (`file:///…`, `s3://bucket/prefix`); what each key
holds is `core.layout`'s business.
"""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import fsspec
from fsspec import AbstractFileSystem
from fsspec.asyn import AsyncFileSystem, sync

from core.layout import PART_PREFIX

# Writes go to object stores in 8 MiB parts (s3fs would otherwise buffer 50 MB per open file); reads
# fetch 4 MiB ranges, two ahead of the one being sent. bench/files.py weighs memory against speed.
WRITE_BLOCK = 8 * 1024 * 1024
READ_BLOCK = 4 * 1024 * 1024
PREFETCH_BLOCKS = 2


class Writer:
    """An fsspec file opened without autocommit: on S3 a multipart upload that only `commit`
    completes (and `discard` aborts)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def write(self, data: bytes) -> None:
        self.handle.write(data)

    def commit(self) -> None:
        self.handle.close()
        self.handle.commit()

    def discard(self) -> None:
        self.handle.discard()


class LocalWriter(Writer):
    """On a local disk: a hidden part file next to the target, renamed over it on commit
    (fsspec's own would stage in the system temp dir, possibly another filesystem, where
    the final move is a copy that readers can see half done)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.part = target.with_name(f"{PART_PREFIX}{uuid.uuid4().hex}-{target.name}")
        super().__init__(self.part.open("wb"))

    def commit(self) -> None:
        self.handle.close()
        os.replace(self.part, self.target)

    def discard(self) -> None:
        self.handle.close()
        self.part.unlink(missing_ok=True)


class Storage:
    """An fsspec filesystem rooted at a URL (`file:///…`, `s3://bucket/prefix`, …)."""

    def __init__(self, url: str, **storage_options: object) -> None:
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.fs: AbstractFileSystem = fs
        self.root = root.rstrip("/")
        self.url = url
        if self.is_local:
            Path(self.root).mkdir(parents=True, exist_ok=True)
        elif not self.fs.exists(self.root):
            # A fresh bucket (MinIO, moto, a new prefix): create it rather than fail every request.
            self.fs.makedirs(self.root, exist_ok=True)

    @property
    def is_local(self) -> bool:
        protocol = self.fs.protocol
        protocols = (protocol,) if isinstance(protocol, str) else protocol
        return "file" in protocols or "local" in protocols

    def path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def local_path(self, key: str) -> Path | None:
        """The key as a local path, when storage is a local (or shared) disk."""
        return Path(self.path(key)) if self.is_local else None

    def _make_parent(self, key: str) -> None:
        self.fs.makedirs(self.fs._parent(self.path(key)), exist_ok=True)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._make_parent(key)
        self.fs.pipe_file(self.path(key), data)

    def open_writer(self, key: str) -> Writer:
        """Write a key all or nothing: readers keep seeing the old object until `commit`."""
        self._make_parent(key)
        local = self.local_path(key)
        if local is not None:
            return LocalWriter(local)
        return Writer(self.fs.open(self.path(key), "wb", block_size=WRITE_BLOCK, autocommit=False))

    def put_file(self, key: str, source: IO[bytes], progress: Callable[[int], None] | None = None) -> int:
        """Stream a file object into storage; returns the bytes written."""
        writer = self.open_writer(key)
        written = 0
        try:
            while chunk := source.read(1024 * 1024):
                writer.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            writer.commit()
        except BaseException:
            writer.discard()
            raise
        return written

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return cast(bytes, self.fs.cat_file(self.path(key)))
        except FileNotFoundError:
            return None

    def stream(self, key: str) -> Iterator[bytes]:
        """The key's bytes in chunks, never the whole object in memory.

        On object storage the next block is fetched while the current one is sent
        (at most PREFETCH_BLOCKS ahead), so a download costs one fetch, not fetch + send.
        """
        if self.is_local:
            with self.fs.open(self.path(key), "rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    yield chunk
            return
        yield from _prefetched(self.fs, self.path(key))

    def read_tail(self, key: str, limit: int) -> tuple[bytes, bool] | None:
        """The last `limit` bytes of a key and whether anything was cut; None when missing."""
        try:
            size = self.fs.size(self.path(key))
        except FileNotFoundError:
            return None
        start = max(0, size - limit)
        with self.fs.open(self.path(key), "rb") as handle:
            handle.seek(start)
            return handle.read(), start > 0

    def size(self, key: str) -> int:
        """Bytes under a key: a file's size, or a folder's total; 0 when missing."""
        try:
            return int(self.fs.du(self.path(key), total=True))
        except FileNotFoundError:
            return 0

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))

    def copy(self, source: str, target: str) -> None:
        self._make_parent(target)
        self.fs.copy(self.path(source), self.path(target))

    def delete(self, key: str) -> None:
        try:
            self.fs.rm(self.path(key), recursive=True)
        except FileNotFoundError:
            pass

    def download(self, key: str, target: Path) -> None:
        self.fs.get_file(self.path(key), str(target))

    def upload(self, source: Path, key: str, progress: Callable[[int], None] | None = None) -> None:
        """Copy a local file to the key. With `progress`, it is streamed in blocks and told of each
        (fsspec's own copy of a file under 100 MiB is one request, silent until done)."""
        if progress is None:
            self._make_parent(key)
            self.fs.put_file(str(source), self.path(key))
            return
        with open(source, "rb") as handle:
            self.put_file(key, handle, progress)

    def ping(self) -> None:
        """Raise when the storage root cannot be reached (on object stores: its bucket)."""
        self.fs.ls(self.root if self.is_local else self.root.split("/", 1)[0], detail=False)


def _prefetched(fs: AbstractFileSystem, path: str) -> Iterator[bytes]:
    blocks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=PREFETCH_BLOCKS)
    abandoned = threading.Event()

    def offer(item: bytes | BaseException | None) -> bool:
        while not abandoned.is_set():
            try:
                blocks.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for chunk in _blocks(fs, path):
                if not offer(chunk):
                    return
            offer(None)
        except BaseException as error:  # handed to the consumer, raised there
            offer(error)

    threading.Thread(target=fetch, name="storage-prefetch", daemon=True).start()
    try:
        while (item := blocks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        abandoned.set()  # a client that hung up stops the fetcher within 0.5 s


def _blocks(fs: AbstractFileSystem, path: str) -> Iterator[bytes]:
    """READ_BLOCK-sized pieces of an object: one streamed GET where the store can (s3fs), as range
    requests cost a round trip each (and on some S3 servers a pass over the whole object)."""
    if not (isinstance(fs, AsyncFileSystem) and hasattr(fs, "open_async")):
        with fs.open(path, "rb", block_size=READ_BLOCK, cache_type="none") as handle:
            while chunk := handle.read(READ_BLOCK):
                yield chunk
        return
    handle = sync(fs.loop, fs.open_async, path, "rb")
    try:
        pending: list[bytes] = []
        size = 0
        while piece := sync(fs.loop, handle.read, READ_BLOCK - size):
            pending.append(piece)
            size += len(piece)
            if size >= READ_BLOCK:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)
    finally:
        body = getattr(handle, "r", None)
        if body is not None:
            body.close()  # hand the connection back even when the reader stopped early
