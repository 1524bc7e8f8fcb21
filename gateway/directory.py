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

from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.orm import Session

from core.status import ACTIVE
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
    elif rotate and user.token_hash != hash_token(token):
        user.token_hash = hash_token(token)
        revoke_job_tokens(session, name)
    session.flush()


# A token digest that no token has: what a revoked token leaves behind.
REVOKED = "revoked:"


def revoke_job_tokens(session: Session, user: str) -> int:
    """End the callback tokens of the user's active jobs (their programs' calls get 401 from then on):
    a rotated or revoked user token takes the tokens acting as that user with it."""
    ended = session.execute(
        update(db.Job)
        .where(db.Job.author == user, db.Job.status.in_(ACTIVE))
        .values(token_hash=literal(REVOKED) + db.Job.id)
    )
    session.flush()
    return int(ended.rowcount)  # type: ignore[attr-defined]


def revoke_user(session: Session, name: str) -> None:
    """No token reaches the user any more (nor their jobs'); their things stay. `users add` gives a new one."""
    user = _user(session, name)
    user.token_hash = REVOKED + new_token()
    revoke_job_tokens(session, name)
    session.flush()


def remove_user(session: Session, name: str) -> str:
    """Revoke the user and leave their groups; the user is deleted when they own nothing (their
    programs and jobs otherwise keep naming them)."""
    revoke_user(session, name)
    session.execute(delete(db.Membership).where(db.Membership.user == name))
    programs = session.scalar(select(func.count()).select_from(db.Program).where(db.Program.author == name)) or 0
    jobs = session.scalar(select(func.count()).select_from(db.Job).where(db.Job.author == name)) or 0
    if programs or jobs:
        session.flush()
        return f"user {name} revoked and out of every group; kept, as the author of {programs} programs and {jobs} jobs"
    session.delete(_user(session, name))
    session.flush()
    return f"user {name} removed"


def _user(session: Session, name: str) -> db.User:
    user = session.get(db.User, name)
    if user is None:
        raise DirectoryError(f"no user {name!r}")
    return user


def remove_member(session: Session, group: str, user: str) -> None:
    membership = session.get(db.Membership, (group, user))
    if membership is None:
        raise DirectoryError(f"{user!r} is not in group {group!r}")
    session.delete(membership)
    session.flush()


def remove_group(session: Session, name: str) -> None:
    """The group, its memberships, the provider administration and the grants it carried."""
    if session.get(db.Group, name) is None:
        raise DirectoryError(f"no group {name!r}")
    for table in (db.Membership, db.ProviderAdmin, db.Grant):
        session.execute(delete(table).where(table.group == name))
    session.execute(delete(db.Group).where(db.Group.name == name))
    session.flush()


def remove_admin(session: Session, provider: str, group: str) -> None:
    admin = session.get(db.ProviderAdmin, (provider, group))
    if admin is None:
        raise DirectoryError(f"{group!r} does not administer provider {provider!r}")
    session.delete(admin)
    session.flush()


def revoke_grant(session: Session, provider: str, title: str, group: str) -> None:
    program = provider_program(session, provider, title)
    row = session.get(db.Grant, (program.id, group))
    if row is None:
        raise DirectoryError(f"{group!r} has no grant on {provider}/{title}")
    session.delete(row)
    session.flush()


def who_has_what(session: Session) -> str:
    """Every user with their groups, every provider with its admin groups, every grant."""
    lines = ["users:"]
    groups: dict[str, list[str]] = {}
    for membership in session.scalars(select(db.Membership)):
        groups.setdefault(membership.user, []).append(membership.group)
    for user in session.scalars(select(db.User).order_by(db.User.name)):
        state = " (revoked)" if user.token_hash.startswith(REVOKED) else ""
        lines.append(f"  {user.name}{state}: {', '.join(sorted(groups.get(user.name, []))) or '-'}")
    lines.append("providers:")
    admins: dict[str, list[str]] = {}
    for admin in session.scalars(select(db.ProviderAdmin)):
        admins.setdefault(admin.provider, []).append(admin.group)
    for provider in session.scalars(select(db.Provider).order_by(db.Provider.name)):
        lines.append(f"  {provider.name}: administered by {', '.join(sorted(admins.get(provider.name, []))) or '-'}")
    lines.append("grants:")
    grants = session.execute(
        select(db.Grant, db.Program).join(db.Program, db.Grant.program_id == db.Program.id).order_by(db.Program.title)
    )
    for row, program in grants:
        trial = ", trial" if row.trial else ""
        lines.append(f"  {program.provider}/{program.title}: {row.group} may {row.permission}{trial}")
    return "\n".join(lines)


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
