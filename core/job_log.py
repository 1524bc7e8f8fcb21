"""What a job's log and stop say, written by the executor and read back by the gateway."""

from __future__ import annotations

STOPPED_MESSAGE = "Job stopped by request."


def run_time_exceeded(seconds: int) -> str:
    return f"Job stopped: it reached the maximum run time of {seconds} s."


# Line prefixes of a provider program's output: [PUBLIC] lines are the user's, [PRIVATE] ones the provider's.
PUBLIC = "[public]"
PRIVATE = "[private]"


# What a job's logs say once the maintenance flow removed its data.
DATA_REMOVED = "[This job's logs and result were removed after the retention period (QS_RETENTION_DAYS).]\n"


def truncation_notice(size_limit: int) -> str:
    """The line that opens a job log whose oldest part was dropped."""
    return f"[Logs exceeded maximum allowed size ({size_limit} bytes); oldest lines were dropped.]\n"
