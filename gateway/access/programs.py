"""Program policy (docs/architecture.md, Access; the reference's legacy group model).

A custom program belongs to its author alone. A provider program is seen by its
author, the provider's admins and groups granted `view` or `run`; run needs `run`
(or author or admin). Disabled programs stay visible; refusing their runs is the
run path's business (423), not visibility's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.access.subject import Principal

EMPTY: frozenset[str] = frozenset()
VIEW, RUN = "view", "run"  # grant permissions; run implies view
PERMISSIONS = (VIEW, RUN)


@dataclass(frozen=True)
class ProgramFacts:
    author: str
    provider: str | None = None
    admin_groups: frozenset[str] = EMPTY  # the provider's admin groups
    view_groups: frozenset[str] = EMPTY  # every granted group (a run grant includes view)
    run_groups: frozenset[str] = EMPTY
    trial_groups: frozenset[str] = field(default=EMPTY)  # run grants that make runs trial runs


def is_provider_admin(subject: Principal | None, admin_groups: frozenset[str]) -> bool:
    return subject is not None and subject.in_any(admin_groups)


def _acts_freely(subject: Principal | None) -> bool:
    """A confined job token touches nothing but its own job."""
    return subject is not None and not subject.confined


def can_upload(subject: Principal | None, admin_groups: frozenset[str] | None) -> bool:
    """Anyone may keep custom programs (admin_groups None); a provider program needs the
    provider's admin membership."""
    if admin_groups is None:
        return _acts_freely(subject)
    return is_provider_admin(subject, admin_groups)


def _manages(subject: Principal, program: ProgramFacts) -> bool:
    return subject.name == program.author or (program.provider is not None and subject.in_any(program.admin_groups))


def can_manage(subject: Principal | None, program: ProgramFacts) -> bool:
    """The program's author, or for a provider program one of the provider's admins."""
    return subject is not None and _acts_freely(subject) and _manages(subject, program)


def can_view(subject: Principal | None, program: ProgramFacts) -> bool:
    if subject is None or not _acts_freely(subject):
        return False
    if program.provider is None:
        return subject.name == program.author
    return _manages(subject, program) or subject.in_any(program.view_groups | program.run_groups)


def can_run(subject: Principal | None, program: ProgramFacts) -> bool:
    if subject is None or not _acts_freely(subject):
        return False
    if program.provider is None:
        return subject.name == program.author
    return _manages(subject, program) or subject.in_any(program.run_groups)


def runs_as_trial(subject: Principal, program: ProgramFacts) -> bool:
    """Trial only when every grant that lets the caller run is a trial grant."""
    if program.provider is None or _manages(subject, program):
        return False
    full = program.run_groups - program.trial_groups
    return subject.in_any(program.trial_groups) and not subject.in_any(full)
