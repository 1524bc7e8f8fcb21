"""User and provider file areas (API.md §2.15, §3.3): names are reduced to safe basenames,
content is judged by its bytes, and every path is built under the caller's own area."""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlalchemy.orm import Session

from blocks import storage as layout
from gateway import db
from gateway.access import files as policy
from gateway.access.facts import admin_groups
from gateway.access.subject import Principal
from gateway.context import Services
from gateway.errors import bad_request, not_found
from gateway.files.content_type import allowed
from gateway.programs.service import find_program, function_missing, stored_program

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
    """The caller's area for this function; the function must be visible to them (API.md §7.4)."""
    if not function:
        raise bad_request("'function' not provided or is not valid")
    program = find_program(session, user, function, provider)
    return layout.job_area(user.name, program.provider, program.title)


def provider_area(session: Session, user: Principal, function: str | None, provider: str | None) -> str:
    if not provider:
        raise bad_request("'provider' not provided or is not valid")
    if not function:
        raise bad_request("'function' not provided or is not valid")
    if session.get(db.Provider, provider) is None or not policy.can_use_provider_area(
        user, admin_groups(session, provider)
    ):
        raise not_found(f"Provider {provider} doesn't exist.")
    program = stored_program(session, user.name, function, provider)
    if program is None:
        raise function_missing(function, provider)
    return layout.provider_area(provider, program.title)


def list_files(services: Services, area: str) -> list[str]:
    fs = services.storage.fs
    try:
        entries = fs.ls(services.storage.path(area), detail=True)
    except FileNotFoundError:
        return []
    return sorted(str(entry["name"]).rsplit("/", 1)[-1] for entry in entries if entry.get("type") == "file")


def check_type(head: bytes) -> None:
    """Judged by the bytes, never the name (API.md §2.15)."""
    if not allowed(head):
        raise bad_request("Uploaded file is not a valid type.")


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
