"""The one storage layer: every artifact, argument, result and log goes through fsspec.

Keys are relative, '/'-separated paths under the configured root, and this module
is the only place that knows the layout (which key holds what).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, cast

import fsspec
from fsspec import AbstractFileSystem

USERS = "users"
PROGRAMS = "programs"
JOBS = "jobs"


def user_area(user: str, provider: str | None = None, title: str | None = None) -> str:
    """A user's data area: shared by all their own programs, per program for provider programs."""
    if provider and title:
        return f"{USERS}/{user}/{provider}/{title}"
    return f"{USERS}/{user}"


def program_artifact(program_id: str) -> str:
    return f"{PROGRAMS}/{program_id}/artifact.tar"


def job_artifact(job_id: str) -> str:
    return f"{JOBS}/{job_id}/artifact.tar"


def job_spec(job_id: str) -> str:
    return f"{JOBS}/{job_id}/spec.json"


def job_logs(job_id: str) -> str:
    return f"{JOBS}/{job_id}/logs.txt"


def arguments_file(area: str, job_id: str) -> str:
    return f"{area}/arguments/{job_id}.json"


def results_file(area: str, job_id: str) -> str:
    return f"{area}/results/{job_id}.json"


class Storage:
    """An fsspec filesystem rooted at a URL (`file:///…`, `s3://bucket/prefix`, …)."""

    def __init__(self, url: str, **storage_options: object) -> None:
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.fs: AbstractFileSystem = fs
        self.root = root.rstrip("/")
        self.url = url
        if self.is_local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

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

    def put_bytes(self, key: str, data: bytes) -> None:
        self.fs.makedirs(self.fs._parent(self.path(key)), exist_ok=True)
        self.fs.pipe_file(self.path(key), data)

    def put_file(self, key: str, source: IO[bytes]) -> int:
        """Stream a file object into storage; returns the bytes written."""
        self.fs.makedirs(self.fs._parent(self.path(key)), exist_ok=True)
        written = 0
        with self.fs.open(self.path(key), "wb") as out:
            while chunk := source.read(1024 * 1024):
                out.write(chunk)
                written += len(chunk)
        return written

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return cast(bytes, self.fs.cat_file(self.path(key)))
        except FileNotFoundError:
            return None

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

    def copy(self, source: str, target: str) -> None:
        self.fs.makedirs(self.fs._parent(self.path(target)), exist_ok=True)
        self.fs.copy(self.path(source), self.path(target))

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))

    def delete(self, key: str) -> None:
        try:
            self.fs.rm(self.path(key), recursive=True)
        except FileNotFoundError:
            pass

    def download(self, key: str, target: Path) -> None:
        self.fs.get_file(self.path(key), str(target))

    def upload(self, source: Path, key: str) -> None:
        self.fs.makedirs(self.fs._parent(self.path(key)), exist_ok=True)
        self.fs.put_file(str(source), self.path(key))

    def ping(self) -> None:
        """Raise when the storage root cannot be reached."""
        self.fs.ls(self.root, detail=False)
