"""What jobs leave on a Ray node's scratch disk, and its removal (run there by flows/maintenance.py)."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from flows.dependencies import collect_environments, tree_bytes

# A job's scratch folder is named by its id; one older than this whose job is not active was left
# by a task that died (a finished task removes its own).
STALE_SCRATCH = timedelta(hours=1)
JOB_FOLDER = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def clear_node(scratch: Path, active: set[str], stale_before: float, envs_unused_since: float | None) -> dict[str, Any]:
    """On one node: remove left-over job scratch folders, and collect unused dependency sets."""
    folders = freed = 0
    if scratch.is_dir():
        for folder in scratch.iterdir():
            if JOB_FOLDER.match(folder.name) and folder.name not in active and folder.stat().st_mtime < stale_before:
                freed += tree_bytes(folder)
                shutil.rmtree(folder, ignore_errors=True)
                folders += 1
    sets, env_bytes = (0, 0) if envs_unused_since is None else collect_environments(scratch / "envs", envs_unused_since)
    return {"scratch_folders": folders, "scratch_bytes": freed, "dependency_sets": sets, "dependency_bytes": env_bytes}
