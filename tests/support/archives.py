"""Program artifacts for tests: an uncompressed tar built in memory (standard library only, so the
e2e suite in the runtime environment uses it too)."""

from __future__ import annotations

import io
import tarfile


def tar_of(members: dict[str, bytes], symlink: tuple[str, str] | None = None) -> bytes:
    """Files by name and content, plus an optional symlink (name, target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type = tarfile.SYMTYPE
            info.linkname = symlink[1]
            archive.addfile(info)
    return buffer.getvalue()
