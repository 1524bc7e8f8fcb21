"""User and provider file areas (API.md §2.15, §3.3): names are reduced to safe basenames,
content is judged by its bytes, and every path is built under the caller's own area."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from sqlalchemy.orm import Session

from blocks import storage as layout
from gateway.auth import Principal
from gateway.context import Services
from gateway.errors import ApiError, bad_request, not_found
from gateway.files.content_type import SNIFF_BYTES, allowed
from gateway.programs.service import find_program

UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
NOT_FOUND = "Requested file was not found."


def safe_name(name: str | None) -> str:
    """The basename with only [A-Za-z0-9_.-] kept; `..`-like names are refused."""
    base = re.split(r"[/\\]", name or "")[-1]
    cleaned = UNSAFE.sub("", base)
    if not cleaned or set(cleaned) == {"."}:
        raise bad_request("'file' not provided or is not valid")
    return cleaned


def user_area(session: Session, user: Principal, function: str | None, provider: str | None) -> str:
    if not function:
        raise bad_request("'function' not provided or is not valid")
    program = find_program(session, user, function, provider)
    return layout.job_area(user.name, program.provider, program.title)


def provider_area(provider: str | None, function: str | None) -> str:
    if not provider:
        raise bad_request("'provider' not provided or is not valid")
    # Providers and their admin groups arrive with the access-rules work; until then none exist.
    raise not_found(f"Provider {provider} doesn't exist.")


def list_files(services: Services, area: str) -> list[str]:
    fs = services.storage.fs
    try:
        entries = fs.ls(services.storage.path(area), detail=True)
    except FileNotFoundError:
        return []
    return sorted(str(entry["name"]).rsplit("/", 1)[-1] for entry in entries if entry.get("type") == "file")


def check_upload(services: Services, source: IO[bytes], size: int | None) -> None:
    head = source.read(SNIFF_BYTES)
    source.seek(0)
    if not allowed(head):
        raise bad_request("Uploaded file is not a valid type.")
    if size is not None and size > services.settings.max_file_bytes:
        raise ApiError(413, f"File is larger than {services.settings.max_file_bytes} bytes.")


def store(services: Services, area: str, name: str, source: IO[bytes]) -> str:
    services.storage.put_file(f"{area}/{name}", source)
    return name


def open_download(services: Services, area: str, name: str) -> tuple[int, Iterator[bytes]]:
    key = f"{area}/{name}"
    fs = services.storage.fs
    path = services.storage.path(key)
    if not fs.isfile(path):
        raise not_found(NOT_FOUND)
    return int(fs.size(path)), services.storage.stream(key)


def delete(services: Services, area: str, name: str) -> None:
    key = f"{area}/{name}"
    fs = services.storage.fs
    if not fs.isfile(services.storage.path(key)):
        raise not_found(NOT_FOUND)
    services.storage.delete(key)
