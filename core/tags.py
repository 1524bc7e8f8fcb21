"""The tags of a job's flow run: whose job it is, which function and which job (the Prefect UI
filters by them; the gateway maps a run's events to its job by the job tag)."""

from __future__ import annotations

from collections.abc import Iterable

USER_TAG = "user:"
JOB_TAG = "job:"
# A flow run a program made (a flow inside it): whose job it belongs to. Never a job's run itself.
IN_JOB_TAG = "in-job:"
# Tags only the platform gives: a program's runs may not carry them (the gateway maps runs by them).
RESERVED_TAGS = (USER_TAG, JOB_TAG, IN_JOB_TAG, "program:", "provider:")


def user_tag(user: str) -> str:
    return f"{USER_TAG}{user}"


def job_tag(job_id: str) -> str:
    return f"{JOB_TAG}{job_id}"


def in_job_tag(job_id: str) -> str:
    return f"{IN_JOB_TAG}{job_id}"


def unreserved(tags: Iterable[str]) -> list[str]:
    return [tag for tag in tags if isinstance(tag, str) and not tag.startswith(RESERVED_TAGS)]


def _value(tags: Iterable[str], prefix: str) -> str | None:
    return next((tag.removeprefix(prefix) for tag in tags if tag.startswith(prefix)), None)


def runner_of(tags: Iterable[str]) -> str | None:
    return _value(tags, USER_TAG)


def job_of(tags: Iterable[str]) -> str | None:
    """The job a run carries out: the gateway's job id, given when it made the run; a run started
    in Prefect has none until it is adopted, and its job then takes the run's own id."""
    return _value(tags, JOB_TAG)


def job_tags(owner: str, title: str, provider: str | None) -> list[str]:
    tags = [user_tag(owner), f"program:{title}"]
    if provider:
        tags.append(f"provider:{provider}")
    return tags
