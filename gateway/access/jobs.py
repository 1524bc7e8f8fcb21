"""Job policy (docs/architecture.md, Access): the author does everything; a provider's admins may read a
provider job and its provider logs; nobody else learns the job exists."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.access.programs import EMPTY, is_provider_admin
from gateway.access.subject import Principal


@dataclass(frozen=True)
class JobFacts:
    id: str
    author: str
    provider: str | None = None
    admin_groups: frozenset[str] = EMPTY  # admins of the job's program's provider


def is_author(subject: Principal | None, job: JobFacts) -> bool:
    """Result, user logs, events, sub-status, runtime jobs and stop are the author's alone
    (and a confined job token's only for its own job)."""
    if subject is None or subject.name != job.author:
        return False
    return not subject.confined or subject.job_id == job.id


def can_read(subject: Principal | None, job: JobFacts) -> bool:
    return is_author(subject, job) or can_read_provider_logs(subject, job)


def can_read_provider_logs(subject: Principal | None, job: JobFacts) -> bool:
    return job.provider is not None and is_provider_admin(subject, job.admin_groups)


def can_list_provider_jobs(subject: Principal | None, admin_groups: frozenset[str]) -> bool:
    return is_provider_admin(subject, admin_groups)
