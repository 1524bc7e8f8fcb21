"""Loading the facts the policies judge from the gateway's store."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import db
from gateway.access.jobs import JobFacts
from gateway.access.programs import EMPTY, RUN, ProgramFacts


def user_groups(session: Session, user: str) -> frozenset[str]:
    return frozenset(session.scalars(select(db.Membership.group).where(db.Membership.user == user)))


def admin_groups(session: Session, provider: str | None) -> frozenset[str]:
    if provider is None:
        return EMPTY
    return frozenset(session.scalars(select(db.ProviderAdmin.group).where(db.ProviderAdmin.provider == provider)))


def program_facts(session: Session, program: db.Program) -> ProgramFacts:
    return many_program_facts(session, [program])[program.id]


def job_facts(session: Session, job: db.Job, program: db.Program) -> JobFacts:
    return JobFacts(
        id=job.id, author=job.author, provider=program.provider, admin_groups=admin_groups(session, program.provider)
    )


def many_program_facts(session: Session, programs: list[db.Program]) -> dict[str, ProgramFacts]:
    """Facts of many programs in three queries (catalog listings)."""
    ids = [program.id for program in programs if program.provider is not None]
    providers = {program.provider for program in programs if program.provider is not None}
    grants: dict[str, list[db.Grant]] = {}
    for grant in session.scalars(select(db.Grant).where(db.Grant.program_id.in_(ids))) if ids else []:
        grants.setdefault(grant.program_id, []).append(grant)
    admins: dict[str, set[str]] = {}
    if providers:
        for admin in session.scalars(select(db.ProviderAdmin).where(db.ProviderAdmin.provider.in_(providers))):
            admins.setdefault(admin.provider, set()).add(admin.group)
    return {
        program.id: _facts(program, grants.get(program.id, []), frozenset(admins.get(program.provider or "", ())))
        for program in programs
    }


def _facts(program: db.Program, grants: list[db.Grant], admins: frozenset[str]) -> ProgramFacts:
    if program.provider is None:
        return ProgramFacts(author=program.author)
    return ProgramFacts(
        author=program.author,
        provider=program.provider,
        admin_groups=admins,
        view_groups=frozenset(grant.group for grant in grants),
        run_groups=frozenset(grant.group for grant in grants if grant.permission == RUN),
        trial_groups=frozenset(grant.group for grant in grants if grant.permission == RUN and grant.trial),
    )
