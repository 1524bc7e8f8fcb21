"""User and provider file areas (docs/architecture.md, File areas): names are reduced to safe basenames,
content is judged by its bytes, and every path is built under the caller's own area."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from core import layout
from gateway.access import files as policy
from gateway.access.facts import program_facts
from gateway.access.subject import Principal
from gateway.context import Services
from gateway.errors import bad_request, not_found
from gateway.files import streaming
from gateway.files.content_type import SNIFF_BYTES, allowed
from gateway.programs.lookup import function_missing, require_provider, split_title, stored_program

UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
NOT_FOUND = "Requested file was not found."


def safe_name(name: str | None) -> str:
    """The basename with only [A-Za-z0-9_.-] kept; `..`-like names are refused."""
    base = re.split(r"[/\\]", name or "")[-1]
    cleaned = UNSAFE.sub("", base)
    if not cleaned or set(cleaned) == {"."} or cleaned.startswith(layout.PART_PREFIX):
        raise bad_request("'file' not provided or is not valid")
    return cleaned


@dataclass(frozen=True)
class AreaQuery:
    """Which area a files call means: the caller's area of a function, or its provider area."""

    function: str | None
    provider: str | None
    provider_area: bool

    def check(self) -> None:
        """Query validation comes first, as upstream."""
        if self.provider_area and not self.provider:
            raise bad_request("'provider' not provided or is not valid")
        if not self.function:
            raise bad_request("'function' not provided or is not valid")


def resolve(session: Session, user: Principal, query: AreaQuery) -> str:
    """The storage key of the area, or the documented 404 when the caller may not use it."""
    query.check()
    provider, title = split_title(query.function or "", query.provider)
    if query.provider_area:
        assert provider is not None  # checked above
        require_provider(session, user, provider, policy.can_use_provider_area)
        program = stored_program(session, user.name, title, provider)
        if program is None:
            raise function_missing(title, provider)
        return layout.provider_area(provider, program.title)
    program = stored_program(session, user.name, title, provider)
    if program is None or not policy.can_use_user_area(user, program_facts(session, program)):
        raise function_missing(title, provider)
    return layout.job_area(user.name, program.provider, program.title)


async def upload(request: Request, services: Services, session: Session, user: Principal, query: AreaQuery) -> str:
    """Query, then the file's name and type, then access, then the bytes (the reference order)."""
    query.check()
    incoming = streaming.MultipartFile(request)
    filename, head = await incoming.start(SNIFF_BYTES)
    name = safe_name(filename)
    if not allowed(head):
        raise bad_request("Uploaded file is not a valid type.")
    area = await run_in_threadpool(resolve, session, user, query)
    session.close()  # no database connection is held while the bytes move
    await streaming.store(services.storage, f"{area}/{name}", incoming, services.settings.max_file_bytes)
    return name


def list_files(services: Services, area: str) -> list[str]:
    fs = services.storage.fs
    try:
        entries = fs.ls(services.storage.path(area), detail=True)
    except FileNotFoundError:
        return []
    names = (str(entry["name"]).rsplit("/", 1)[-1] for entry in entries if entry.get("type") == "file")
    return sorted(name for name in names if not name.startswith(layout.PART_PREFIX))


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
