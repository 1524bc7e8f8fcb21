"""Where a running program's output goes: the job's log in storage, and a first view in Prefect's logs.

The log is capped while the job runs (its newest part kept, a notice marking the cut) so that a
chatty program cannot fill storage. core/log_reader.py reads it back.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from core import layout
from core.job_log import PRIVATE, truncation_notice
from core.log_reader import log_parts
from core.storage import Storage

REMOTE_FLUSH_SECONDS = 0.5
MIRROR_LINE_BYTES = 64 * 1024  # the longest line copied to the Prefect logs
# The growing part is re-uploaded whole every REMOTE_FLUSH_SECONDS: the ceiling bounds that upload.
PART_CEILING = 1024 * 1024
# A tiny cap would otherwise mean an object, and a PUT, every few lines.
PART_FLOOR = 4 * 1024

logger = logging.getLogger(__name__)


def part_bytes(size_limit: int) -> int:
    """The size of a log part on object storage.

    A quarter of the cap keeps storage within about 1.25 times the cap (the oldest part goes once
    the newer ones hold the cap) and a reader's tail within a few requests.
    """
    return min(PART_CEILING, max(size_limit // 4, PART_FLOOR))


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


class LogSink:
    """Appends program output to the job's log, live.

    On local storage the log key is a file appended to directly (readers see each chunk at once),
    cut back to its newest `size_limit` bytes, a notice line first, once past twice its cap. On
    object storage it is written in parts (`PartedLog`): nothing is ever uploaded whole.
    """

    def __init__(
        self, storage: Storage, key: str, scratch_file: Path, size_limit: int, mirror: PrefectLogMirror | None = None
    ) -> None:
        self.mirror = mirror
        local = storage.local_path(key)
        self.log: FileLog | PartedLog = (
            FileLog(local, size_limit) if local is not None else PartedLog(storage, key, scratch_file, size_limit)
        )

    def write(self, data: bytes) -> None:
        self.log.write(data)
        if self.mirror is not None:
            self.mirror.feed(data)

    def close(self) -> None:
        try:
            self.log.close()
        finally:
            if self.mirror is not None:
                self.mirror.close()


class FileLog:
    """The log as one local file, appended to; a file past twice the cap is cut back to the cap."""

    def __init__(self, path: Path, size_limit: int) -> None:
        self.path = path
        self.size_limit = size_limit
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle: IO[bytes] = open(self.path, "ab")
        self.size = self.handle.tell()

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.handle.flush()
        self.size += len(data)
        if self.size > 2 * self.size_limit:
            self.handle.close()
            self._cap()
            self.handle = open(self.path, "ab")
            self.size = self.handle.tell()

    def close(self) -> None:
        self.handle.close()
        self._cap()

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


@dataclass(eq=False)
class Part:
    """One part of a log written in parts, as this sink knows it."""

    number: int
    path: Path | None  # the scratch copy, until its last upload (None for an earlier attempt's part)
    size: int = 0
    stored: bool = False  # some version of it is in storage
    synced: bool = True  # storage has all its bytes
    uploading: bool = False
    dropped: bool = False


class PartedLog:
    """The log on object storage, as numbered part objects (`core.layout.log_part`).

    Output goes to a scratch copy of the newest part. A background thread uploads every part that
    changed, oldest first, every REMOTE_FLUSH_SECONDS: a full part once more, then never again,
    and the growing one as it grows. Once the newer parts hold the cap, the oldest is dropped (its
    object deleted), so storage holds about `size_limit` plus a part. A later attempt numbers on
    after the parts already there. The writer never waits for storage.
    """

    def __init__(self, storage: Storage, key: str, scratch_file: Path, size_limit: int) -> None:
        self.storage = storage
        self.key = key
        self.size_limit = size_limit
        self.part_bytes = part_bytes(size_limit)
        self.scratch = scratch_file
        self.scratch.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()  # guards the parts' state, never held while storage is called
        self.parts = self._earlier_parts()
        self.held = sum(part.size for part in self.parts)  # the bytes of all parts not dropped
        self.dropped: list[Part] = []
        self.current = self._start(self.parts[-1].number + 1 if self.parts else 1)
        self.failing = False
        self.closed = threading.Event()
        self.uploader = threading.Thread(target=self._upload_while_open, name="log-upload", daemon=True)
        self.uploader.start()

    def _earlier_parts(self) -> list[Part]:
        parts = log_parts(self.storage, self.key)
        if self.storage.exists(self.key):
            # An earlier attempt's log written whole (before logs came in parts): it becomes a part,
            # copied within storage, so that a reader of the parts sees it.
            number = parts[-1].number + 1 if parts else 1
            self.storage.copy(self.key, layout.log_part(self.key, number))
            self.storage.delete(self.key)
            parts = log_parts(self.storage, self.key)
        return [Part(part.number, None, part.size, stored=True) for part in parts]

    def _start(self, number: int) -> Part:
        path = self.scratch.with_name(f"{self.scratch.stem}.{number:08d}{self.scratch.suffix}")
        self.handle: IO[bytes] = open(path, "wb")
        part = Part(number, path)
        self.parts.append(part)
        return part

    def write(self, data: bytes) -> None:
        while data:
            room = self.part_bytes - self.current.size
            piece, data = data[:room], data[room:]
            self.handle.write(piece)
            self.handle.flush()
            with self.lock:
                self.current.size += len(piece)
                self.held += len(piece)
                self.current.synced = False
                if self.current.size >= self.part_bytes:
                    self.handle.close()
                    self.current = self._start(self.current.number + 1)
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Drop the oldest parts while the newer ones still hold the cap (a reader never needs them)."""
        while len(self.parts) > 1 and self.held - self.parts[0].size >= self.size_limit:
            part = self.parts.pop(0)
            self.held -= part.size
            part.dropped = True
            if part.path is not None and not part.uploading:
                part.path.unlink(missing_ok=True)  # never uploaded in full: now it never will be
                part.path = None
            if part.stored or part.uploading:
                self.dropped.append(part)

    def _upload_while_open(self) -> None:
        while not self.closed.wait(REMOTE_FLUSH_SECONDS):
            try:
                self._sync()
                self.failing = False
            except Exception:
                if not self.failing:  # once per outage, not every flush
                    logger.warning("Uploading the job log %s failed; retrying.", self.key, exc_info=True)
                self.failing = True

    def _sync(self) -> None:
        """Bring storage up to date, oldest part first: a reader never sees a newer part without the
        older ones. Dropped parts are deleted before each upload, which keeps storage to about the
        cap plus a part."""
        with self.lock:
            due = [part for part in self.parts if not part.synced]
        for part in due:
            self._delete_dropped()
            with self.lock:
                if part.dropped or part.path is None:
                    continue
                part.uploading, part.synced, part.stored = True, True, True
                path = part.path
            try:
                self.storage.upload(path, layout.log_part(self.key, part.number))
            except BaseException:
                with self.lock:
                    part.synced = False
                raise
            finally:
                with self.lock:
                    part.uploading = False
                    if part.path is not None and (part.dropped or (part.synced and part is not self.current)):
                        part.path.unlink(missing_ok=True)  # uploaded in full: the scratch copy is done with
                        part.path = None
        self._delete_dropped()

    def _delete_dropped(self) -> None:
        with self.lock:
            dropped, self.dropped = self.dropped, []
        for index, part in enumerate(dropped):
            try:
                self.storage.delete(layout.log_part(self.key, part.number))
            except BaseException:
                with self.lock:
                    self.dropped[:0] = dropped[index:]
                raise

    def close(self) -> None:
        """Upload what is left; the growing part is uploaded one last time."""
        self.handle.close()
        self.closed.set()
        self.uploader.join()
        with self.lock:
            if self.current.size == 0:
                if len(self.parts) > 1:  # nothing written since the last full part: no empty object
                    self.parts.remove(self.current)
                    if self.current.path is not None:
                        self.current.path.unlink(missing_ok=True)
                else:
                    self.current.synced = False  # a log without output still exists (empty)
        try:
            self._sync()
        finally:
            for part in self.parts:
                if part.path is not None:
                    part.path.unlink(missing_ok=True)
