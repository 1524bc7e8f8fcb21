"""Safe handling of program artifacts (uncompressed or compressed tars).

Extraction uses tarfile's "data" filter: no absolute paths, no `..`, no links
pointing outside the folder, no device files. The same check runs at upload so a
bad tar is refused before it is stored. Accepted formats: tar, uncompressed or
compressed with gzip, bzip2 or xz. Whatever the format, an artifact has at most
MAX_ENTRIES members with names of at most MAX_NAME_BYTES, expands to at most
MAX_EXTRACTED_BYTES, and past ALWAYS_EXPANDS_TO to at most MAX_EXPANSION times
its own size: a small
archive of millions of entries, or of a huge run of zeros, is refused while it is
read, before it costs memory or disk.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import posixpath
import re
import tarfile
import zlib
from pathlib import Path
from typing import IO, cast

MAX_EXTRACTED_BYTES = 1024 * 1024 * 1024
MAX_ENTRIES = 10_000
MAX_NAME_BYTES = 1024
MAX_EXPANSION = 200  # extracted bytes per byte of artifact; source code compresses about 5 to 10 times
ALWAYS_EXPANDS_TO = 16 * 1024 * 1024  # however small the artifact
ENTRYPOINT_PATTERN = re.compile(r"^[A-Za-z0-9_./-]+\.py$")


class ArtifactError(ValueError):
    """The artifact or the entrypoint is not acceptable."""


def normalize_entrypoint(entrypoint: str) -> str:
    """A relative `.py` path inside the artifact, or ArtifactError."""
    path = posixpath.normpath(entrypoint.strip())
    if not ENTRYPOINT_PATTERN.match(path) or path.startswith("/") or any(part == ".." for part in path.split("/")):
        raise ArtifactError(f"Invalid entrypoint '{entrypoint}': expected a relative path to a .py file.")
    return path


def check_members(archive: tarfile.TarFile, destination: Path, size: int) -> list[tarfile.TarInfo]:
    """Members as the data filter would extract them; raises ArtifactError on any unsafe one, or past
    the caps (`size` is the artifact's own, in bytes). Members are read one by one, so the caps stop
    the reading, not only the result."""
    checked: list[tarfile.TarInfo] = []
    total = 0
    limit = _expansion_limit(size)
    for count, member in enumerate(archive, start=1):
        if count > MAX_ENTRIES:
            raise ArtifactError(f"Artifact has more than {MAX_ENTRIES} entries.")
        if len(member.name.encode()) > MAX_NAME_BYTES or len(member.linkname.encode()) > MAX_NAME_BYTES:
            raise ArtifactError(f"Artifact has a member name longer than {MAX_NAME_BYTES} bytes.")
        if member.name.startswith("/"):
            # The data filter would only strip the slash; an absolute name is refused outright.
            raise ArtifactError(f"Unsafe artifact member '{member.name}': absolute path.")
        try:
            safe = tarfile.data_filter(member, str(destination))
        except tarfile.FilterError as error:
            raise ArtifactError(f"Unsafe artifact member '{member.name}': {error.__class__.__name__}.") from None
        if safe is None:
            continue
        total += safe.size
        if total > limit:
            raise ArtifactError(
                f"Artifact expands past {limit} bytes (at most {MAX_EXPANSION} times its size, "
                f"and {MAX_EXTRACTED_BYTES} bytes in all)."
            )
        checked.append(safe)
    return checked


class _Bounded:
    """The decompressed tar stream, refused past `cap` bytes before any read that would pass it:
    tarfile reads a pax or GNU long-name header whole, so a tiny archive could otherwise make it
    allocate gigabytes before a member is even checked."""

    def __init__(self, raw: IO[bytes], cap: int) -> None:
        self.raw = raw
        self.cap = cap

    def read(self, size: int = -1) -> bytes:
        room = self.cap - self.raw.tell()
        data = self.raw.read(room + 1 if size < 0 or size > room else size)
        if len(data) > room:
            raise self._past_cap()
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self.raw.seek(offset, whence)
        if position > self.cap:
            raise self._past_cap()
        return position

    def _past_cap(self) -> ArtifactError:
        return ArtifactError(f"Artifact expands past {self.cap} bytes.")

    def tell(self) -> int:
        return self.raw.tell()


def _opened(source: IO[bytes], size: int) -> tarfile.TarFile:
    """The tar inside `source` (plain, gzip, bzip2 or xz), read through a decompressed-size cap."""
    head = source.read(6)
    source.seek(0)
    raw: IO[bytes] = source
    if head.startswith(b"\x1f\x8b"):
        raw = cast(IO[bytes], gzip.GzipFile(fileobj=source, mode="rb"))
    elif head.startswith(b"BZh"):
        raw = cast(IO[bytes], bz2.BZ2File(source))
    elif head.startswith(b"\xfd7zXZ\x00"):
        raw = cast(IO[bytes], lzma.LZMAFile(source))
    # Every byte of the stream is a header or a member's content: members are capped, and so are
    # their headers (a block each, plus names and pax records within the name cap).
    cap = _expansion_limit(size) + MAX_ENTRIES * (3 * tarfile.BLOCKSIZE + 2 * MAX_NAME_BYTES) + tarfile.RECORDSIZE
    return tarfile.open(fileobj=cast(IO[bytes], _Bounded(raw, cap)), mode="r:")


def _expansion_limit(size: int) -> int:
    return min(MAX_EXTRACTED_BYTES, max(size * MAX_EXPANSION, ALWAYS_EXPANDS_TO))


def validate_artifact(source: IO[bytes], entrypoint: str) -> None:
    """Refuse a tar that is unreadable, unsafe, or lacks the entrypoint file."""
    size = source.seek(0, 2)
    source.seek(0)
    try:
        with _opened(source, size) as archive:
            members = check_members(archive, Path("/artifact"), size)
            for member in members:  # read every byte once: a truncated archive fails here, not at run time
                content = archive.extractfile(member) if member.isfile() else None
                while content is not None and content.read(1024 * 1024):
                    pass
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError):
        raise ArtifactError("Artifact is not a valid tar archive.") from None
    names = {posixpath.normpath(member.name) for member in members if member.isfile()}
    if entrypoint not in names:
        raise ArtifactError(f"Entrypoint '{entrypoint}' is not a file in the artifact.")


def extract_artifact(tar_path: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    size = tar_path.stat().st_size
    with tar_path.open("rb") as source, _opened(source, size) as archive:
        check_members(archive, destination, size)
        archive.extractall(destination, filter="data")
