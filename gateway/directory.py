"""The directory: users, groups, providers and program grants, as the CLI and the seed file manage them.

Every name here becomes part of a storage key or a Prefect tag, so each is checked
against one pattern before it is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import db
from gateway.access.programs import PERMISSIONS

DISABLED_MESSAGE = "This Qiskit Function is disabled."
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,150}$")
KEY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,150}$")  # groups and providers


class DirectoryError(ValueError):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def valid_user_name(name: str) -> bool:
    """User names become storage folders: safe characters only, and never `.` or `..`."""
    return bool(USER_NAME.match(name)) and set(name) != {"."}


def valid_key(name: str) -> bool:
    return bool(KEY_NAME.match(name))


def _check_key(name: str, kind: str) -> None:
    if not valid_key(name):
        raise DirectoryError(f"invalid {kind} name {name!r}: use letters, digits, _ and - (at most 150)")


def add_user(session: Session, name: str, token: str, rotate: bool = True) -> None:
    """Create the user, or (`rotate`) give an existing one this token. Tokens are stored as SHA-256 digests."""
    if not valid_user_name(name):
        raise DirectoryError(f"invalid user name {name!r}: use letters, digits, _ . @ and - (at most 150)")
    if len(token) < 8:
        raise DirectoryError("tokens have at least 8 characters")
    user = session.get(db.User, name)
    if user is None:
        session.add(db.User(name=name, token_hash=hash_token(token)))
    elif rotate:
        user.token_hash = hash_token(token)
    session.flush()


def add_group(session: Session, name: str) -> None:
    _check_key(name, "group")
    if session.get(db.Group, name) is None:
        session.add(db.Group(name=name))
        session.flush()


def add_member(session: Session, group: str, user: str) -> None:
    if session.get(db.User, user) is None:
        raise DirectoryError(f"no user {user!r}")
    add_group(session, group)
    if session.get(db.Membership, (group, user)) is None:
        session.add(db.Membership(group=group, user=user))
        session.flush()


def add_provider(session: Session, name: str, admin_groups: list[str], registry: str | None = None) -> None:
    _check_key(name, "provider")
    provider = session.get(db.Provider, name)
    if provider is None:
        session.add(db.Provider(name=name, image_registry=registry))
    elif registry is not None:
        provider.image_registry = registry
    session.flush()
    for group in admin_groups:
        add_group(session, group)
        if session.get(db.ProviderAdmin, (name, group)) is None:
            session.add(db.ProviderAdmin(provider=name, group=group))
    session.flush()


def provider_program(session: Session, provider: str, title: str) -> db.Program:
    program = session.scalar(select(db.Program).where(db.Program.provider == provider, db.Program.title == title))
    if program is None:
        raise DirectoryError(f"no program {provider}/{title}")
    return program


def grant(session: Session, provider: str, title: str, group: str, permission: str, trial: bool = False) -> None:
    if permission not in PERMISSIONS:
        raise DirectoryError(f"permission is one of {', '.join(PERMISSIONS)}")
    program = provider_program(session, provider, title)
    add_group(session, group)
    row = session.get(db.Grant, (program.id, group))
    if row is None:
        session.add(db.Grant(program_id=program.id, group=group, permission=permission, trial=trial))
    else:
        row.permission, row.trial = permission, trial
    session.flush()


def set_disabled(session: Session, provider: str, title: str, disabled: bool, message: str | None = None) -> None:
    program = provider_program(session, provider, title)
    program.disabled = disabled
    program.disabled_message = message if disabled else None
    session.flush()


def seed(session: Session, path: Path) -> None:
    """Apply a TOML seed file (see deployments/dev-seed.toml). It only adds: a token rotated
    since (with the CLI) is kept, and running it twice changes nothing."""
    with path.open("rb") as handle:
        data: dict[str, Any] = tomllib.load(handle)
    for user in data.get("users", []):
        add_user(session, user["name"], user["token"], rotate=False)
        for group in user.get("groups", []):
            add_member(session, group, user["name"])
    for group in data.get("groups", []):
        add_group(session, group["name"])
        for member in group.get("members", []):
            add_member(session, group["name"], member)
    for provider in data.get("providers", []):
        add_provider(session, provider["name"], provider.get("admin_groups", []), provider.get("registry"))
    session.commit()
