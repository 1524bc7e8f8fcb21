"""Finding programs: by name or id, as the caller may see or run them, and listing them.

Jobs and file areas find their program through here too, so visibility has one home.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import db
from gateway.access import programs as policy
from gateway.access.facts import admin_groups, many_program_facts, program_facts
from gateway.access.subject import Principal
from gateway.errors import ApiError, bad_request, not_found

FILTERS = ("", "catalog", "serverless")


def function_missing(title: str, provider: str | None = None) -> ApiError:
    name = f"{provider}/{title}" if provider else title
    return not_found(f"Qiskit Function {name} doesn't exist.")


def split_title(title: str, provider: str | None) -> tuple[str | None, str]:
    """`prov/title` given as one string names a provider function."""
    if provider is None and "/" in title:
        provider, title = title.split("/", 1)
    return provider or None, title


def stored_program(session: Session, owner: str, title: str, provider: str | None) -> db.Program | None:
    """A custom program is unique per (author, title), a provider program per (provider, title)."""
    query = select(db.Program).where(db.Program.title == title)
    if provider is None:
        query = query.where(db.Program.author == owner, db.Program.provider.is_(None))
    else:
        query = query.where(db.Program.provider == provider)
    return session.scalar(query)


def find_program(
    session: Session, user: Principal, title: str, provider: str | None, *, to_run: bool = False
) -> db.Program:
    """The program the caller may see (or run) under this name, or the same 404 as a missing one."""
    provider, title = split_title(title, provider)
    program = stored_program(session, user.name, title, provider)
    if program is not None:
        facts = program_facts(session, program)
        if (policy.can_run if to_run else policy.can_view)(user, facts):
            return program
    raise function_missing(title, provider)


def program_by_id(session: Session, user: Principal, program_id: str, to_manage: bool = False) -> db.Program:
    """The program with this id as the user may see it, or manage it (its schedules); 404 otherwise."""
    program = session.get(db.Program, program_id) if len(program_id) <= 36 else None
    allowed = policy.can_manage if to_manage else policy.can_view
    if program is None or not allowed(user, program_facts(session, program)):
        raise not_found(f"Qiskit Function [{program_id}] doesn't exist.")
    return program


def check_filter(value: str | None) -> None:
    """`catalog` (provider functions) or `serverless` (custom ones), for programs and jobs alike."""
    if value is not None and value not in FILTERS:
        raise bad_request("'filter' must be 'catalog' or 'serverless'.")


def list_programs(session: Session, user: Principal, filter_: str | None, provider: str | None) -> list[db.Program]:
    """No filter: own custom programs plus the provider programs the caller may view;
    `serverless`: own custom programs only; `catalog`: provider programs the caller may run."""
    check_filter(filter_)
    candidates: list[db.Program] = []
    if filter_ != "catalog" and not provider:
        own = select(db.Program).where(db.Program.author == user.name, db.Program.provider.is_(None))
        candidates.extend(session.scalars(own.order_by(db.Program.created)))
    if filter_ != "serverless":
        shared = select(db.Program).where(db.Program.provider.is_not(None))
        if provider:
            shared = shared.where(db.Program.provider == provider)
        candidates.extend(session.scalars(shared.order_by(db.Program.provider, db.Program.title)))
    facts = many_program_facts(session, candidates)
    allowed = policy.can_run if filter_ == "catalog" else policy.can_view
    return [program for program in candidates if allowed(user, facts[program.id])]


def require_provider(
    session: Session, user: Principal, provider: str, allowed: Callable[[Principal, frozenset[str]], bool]
) -> None:
    """The provider exists and the policy lets the caller act for it; else the same 404 either way."""
    if session.get(db.Provider, provider) is None or not allowed(user, admin_groups(session, provider)):
        raise not_found(f"Provider {provider} doesn't exist.")
