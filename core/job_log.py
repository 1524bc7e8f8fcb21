"""What a job's log and stop say, written by the executor and read back by the gateway."""

from __future__ import annotations

STOPPED_MESSAGE = "Job stopped by request."


def run_time_exceeded(seconds: int) -> str:
    return f"Job stopped: it reached the maximum run time of {seconds} s."


# Why a job was stopped by its executor's shutdown (SIGINT; SIGTERM leaves jobs running).
EXECUTOR_SHUT_DOWN = "Job stopped: its executor was shut down."


# How the messages of failures the platform saw (not the program's own) begin: the job's events
# show them as ERROR events (gateway/jobs/service.py).
JOB_FAILED = "Job failed: "


def node_lost(node_id: str, address: str) -> str:
    return f"{JOB_FAILED}the Ray node it ran on was lost (node ID {node_id}, IP {address})."


SUPERVISOR_LOST = f"{JOB_FAILED}the supervisor of its program was lost, and the program with it."
WORKER_LOST = f"{JOB_FAILED}the Ray worker running its program died (killed, or out of memory)."
PROGRAM_LOST = f"{JOB_FAILED}its program's supervisor stopped sending heartbeats: it was lost, and the program with it."
EXECUTOR_LOST = f"{JOB_FAILED}its executor stopped while it ran, and its program's supervisor is gone."


# Line prefixes of a provider program's output: [PUBLIC] lines are the user's, [PRIVATE] ones the provider's.
PUBLIC = "[public]"
PRIVATE = "[private]"


# What a job's logs say once the maintenance flow removed its data.
DATA_REMOVED = "[This job's logs and result were removed after the retention period (QS_RETENTION_DAYS).]\n"


def truncation_notice(size_limit: int) -> str:
    """The line that opens a job log whose oldest part was dropped."""
    return f"[Logs exceeded maximum allowed size ({size_limit} bytes); oldest lines were dropped.]\n"
