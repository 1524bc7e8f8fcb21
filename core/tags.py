"""The tags of a job's flow run: whose job it is and which function (the active-job limit counts
runs by their user tag; the Prefect UI filters by them)."""

from __future__ import annotations

from collections.abc import Iterable

USER_TAG = "user:"


def user_tag(user: str) -> str:
    return f"{USER_TAG}{user}"


def runner_of(tags: Iterable[str]) -> str | None:
    return next((tag.removeprefix(USER_TAG) for tag in tags if tag.startswith(USER_TAG)), None)


def job_tags(owner: str, title: str, provider: str | None) -> list[str]:
    tags = [user_tag(owner), f"program:{title}"]
    if provider:
        tags.append(f"provider:{provider}")
    return tags
