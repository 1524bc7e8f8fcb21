"""What the maintenance flow removes from a node's scratch disk: left-over job folders and unused
dependency sets, never what a job may still use."""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from pathlib import Path

from flows.dependencies import collect_environments, ensure_environment, environment_key, in_use
from flows.node_scratch import clear_node, held

DAY = 86_400.0


def aged(path: Path, days: float) -> Path:
    moment = time.time() - days * DAY
    os.utime(path, (moment, moment))
    return path


def dependency_set(root: Path, key: str, days_unused: float) -> Path:
    folder = root / key
    (folder / "package").mkdir(parents=True)
    (folder / "package" / "__init__.py").write_bytes(b"x" * 100)
    return aged(folder, days_unused)


def test_unused_dependency_sets_go_and_used_ones_stay(tmp_path: Path) -> None:
    old = dependency_set(tmp_path, "a" * 64, days_unused=10)
    recent = dependency_set(tmp_path, "b" * 64, days_unused=1)
    assert collect_environments(tmp_path, time.time() - 7 * DAY) == (1, 100)
    assert not old.exists() and recent.exists()
    assert not list(tmp_path.glob(".*removed"))


def test_a_set_being_taken_by_a_job_is_left_alone(tmp_path: Path) -> None:
    old = dependency_set(tmp_path, "c" * 64, days_unused=10)
    with open(tmp_path / f"{old.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # what ensure_environment holds while it takes the set
        assert collect_environments(tmp_path, time.time() - 7 * DAY) == (0, 0)
    assert old.exists()


def test_using_a_set_marks_it_used(tmp_path: Path) -> None:
    key = environment_key(["somepackage==1.0"])
    folder = dependency_set(tmp_path, key, days_unused=10)
    assert ensure_environment(["somepackage==1.0"], tmp_path, Path("/unused/python")) == folder
    assert collect_environments(tmp_path, time.time() - 7 * DAY) == (0, 0)
    assert folder.exists()


def test_only_stale_folders_no_task_holds_are_cleared(tmp_path: Path) -> None:
    stale, running, fresh = (str(uuid.uuid4()) for _ in range(3))
    for job_id in (stale, running, fresh):
        (tmp_path / job_id / "artifact").mkdir(parents=True)
        (tmp_path / job_id / "artifact" / "main.py").write_bytes(b"print(1)\n")
    (tmp_path / "not-a-job").mkdir()
    with held(tmp_path / running):
        for name in (stale, running, "not-a-job"):
            aged(tmp_path / name, days=1)
        report = clear_node(tmp_path, time.time() - 3600, None)
    assert report == {"scratch_folders": 1, "scratch_bytes": 9, "dependency_sets": 0, "dependency_bytes": 0}
    assert not (tmp_path / stale).exists()
    assert all((tmp_path / name).exists() for name in (running, fresh, "not-a-job"))


def test_a_held_dependency_set_is_never_collected(tmp_path: Path) -> None:
    old = dependency_set(tmp_path, "d" * 64, days_unused=10)
    with in_use(old):
        assert collect_environments(tmp_path, time.time() - 7 * DAY) == (0, 0)
    assert collect_environments(tmp_path, time.time() - 7 * DAY) == (1, 100)
