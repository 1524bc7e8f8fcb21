"""What a job's log and stop say, written by the executor and read back by the gateway."""

from __future__ import annotations

STOPPED_MESSAGE = "Job stopped by request."


def run_time_exceeded(seconds: int) -> str:
    return f"Job stopped: it reached the maximum run time of {seconds} s."


def executor_shut_down(drain_seconds: int | None) -> str:
    """Why a job was stopped by its executor's shutdown: at once (SIGINT), or still running when the
    drain that SIGTERM starts ran out."""
    if drain_seconds is None:
        return "Job stopped: its executor was shut down."
    return f"Job stopped: its executor was shut down and the job did not end within {drain_seconds} s."


# Line prefixes of a provider program's output: [PUBLIC] lines are the user's, [PRIVATE] ones the provider's.
PUBLIC = "[public]"
PRIVATE = "[private]"


# What a job's logs say once the maintenance flow removed its data.
DATA_REMOVED = "[This job's logs and result were removed after the retention period (QS_RETENTION_DAYS).]\n"


def truncation_notice(size_limit: int) -> str:
    """The line that opens a job log whose oldest part was dropped."""
    return f"[Logs exceeded maximum allowed size ({size_limit} bytes); oldest lines were dropped.]\n"
