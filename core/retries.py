"""Retries of a job: how many, how far apart, and how its attempts show (log separator, attempt number)."""

from __future__ import annotations

MAX_RETRIES = 10
MAX_RETRY_DELAY = 3600
ATTEMPT_VARIABLE = "ENV_JOB_ATTEMPT"


def separator(attempt: int, attempts: int) -> str:
    """The line the job log gets between two attempts."""
    return f"----- attempt {attempt} of {attempts} -----\n"


def retrying(attempt: int, attempts: int) -> str:
    """What a job's events say while it waits for its next attempt."""
    return f"retrying, attempt {attempt} of {attempts}"


# The name of the Scheduled state Prefect gives a failed attempt that will be retried.
RETRY_STATE = "AwaitingRetry"
