"""A job's scratch folder on a Ray node, held while its task runs, and the removal of what dead
tasks left there and of unused dependency sets (run on each node by gateway/maintenance.py)."""

from __future__ import annotations

import fcntl
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from flows.dependencies import collect_environments, tree_bytes

# A folder younger than this may belong to a task that has not taken its lock yet.
STALE_SCRATCH = timedelta(hours=1)
JOB_FOLDER = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HELD = ".in-use"


@contextmanager
def held(folder: Path) -> Iterator[Path]:
    """A job's scratch folder, held by its task until the end (a finished task removes it)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / HELD, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield folder


def _remove_if_left_behind(folder: Path, stale_before: float) -> int | None:
    """Remove a job folder no task holds (its task died: killed outright, node restarted) that is
    not new; the bytes it held, None when kept. Removed under the lock: a retry of its job on this
    node waits for it."""
    if not JOB_FOLDER.match(folder.name) or folder.stat().st_mtime >= stale_before:
        return None
    with open(folder / HELD, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        size = tree_bytes(folder)
        shutil.rmtree(folder)
        return size


def clear_node(scratch: Path, stale_before: float, envs_unused_since: float | None) -> dict[str, Any]:
    """On one node: remove job scratch folders dead tasks left, and collect unused dependency sets."""
    folders = freed = 0
    if scratch.is_dir():
        for folder in scratch.iterdir():
            try:
                if (size := _remove_if_left_behind(folder, stale_before)) is not None:
                    folders, freed = folders + 1, freed + size
            except FileNotFoundError:
                continue  # its task ended meanwhile and removed it
    sets, env_bytes = (0, 0) if envs_unused_since is None else collect_environments(scratch / "envs", envs_unused_since)
    return {"scratch_folders": folders, "scratch_bytes": freed, "dependency_sets": sets, "dependency_bytes": env_bytes}
