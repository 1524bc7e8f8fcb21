"""The storage key layout: which key holds what. The only place that knows it.

Keys are relative, '/'-separated paths under the configured storage root.
"""

from __future__ import annotations

USERS = "users"
PROGRAMS = "programs"
JOBS = "jobs"
PROVIDERS = "providers"
PART_PREFIX = ".qs-part-"  # an upload in progress (never listed)


def user_area(user: str, provider: str | None = None, title: str | None = None) -> str:
    """A user's data area: shared by all their own programs, per program for provider programs."""
    if provider and title:
        return f"{USERS}/{user}/{provider}/{title}"
    return f"{USERS}/{user}"


def job_area(user: str, provider: str | None, title: str) -> str:
    """The data area of a user's job of a program (per program only for provider programs)."""
    return user_area(user, provider, title if provider else None)


def provider_area(provider: str, title: str) -> str:
    """A provider program's own area, shared by every user's jobs of it."""
    return f"{PROVIDERS}/{provider}/{title}"


def program_artifact(program_id: str, revision: str) -> str:
    """One key per uploaded revision of a program's artifact."""
    return f"{PROGRAMS}/{program_id}/{revision}.tar"


def job_folder(job_id: str) -> str:
    """Everything of a job that is not in a data area: snapshot, spec, logs."""
    return f"{JOBS}/{job_id}"


def job_artifact(job_id: str) -> str:
    return f"{JOBS}/{job_id}/artifact.tar"


def job_spec(job_id: str) -> str:
    return f"{JOBS}/{job_id}/spec.json"


def job_logs(job_id: str) -> str:
    return f"{JOBS}/{job_id}/logs.txt"


def log_parts_folder(log_key: str) -> str:
    """The folder of a log written in parts (object storage), beside its single-file key."""
    return log_key.removesuffix(".txt")


def log_part(log_key: str, number: int) -> str:
    """Part `number` (from 1) of a log; zero-padded so that names sort in writing order."""
    return f"{log_parts_folder(log_key)}/{number:08d}.txt"


def log_part_number(name: str) -> int | None:
    """The number of a log part from its key or file name; None for anything else."""
    stem, _, suffix = name.rsplit("/", 1)[-1].partition(".")
    return int(stem) if suffix == "txt" and stem.isascii() and stem.isdigit() else None


def job_copy_back(job_id: str) -> str:
    """A heartbeat kept while a job's task saves its data area: a stop's force-kill waits for it."""
    return f"{JOBS}/{job_id}/copy-back"


def arguments_file(area: str, job_id: str) -> str:
    return f"{area}/arguments/{job_id}.json"


def results_file(area: str, job_id: str) -> str:
    return f"{area}/results/{job_id}.json"
