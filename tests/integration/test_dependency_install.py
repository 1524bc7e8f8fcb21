"""Installing a job's dependencies from the package index into the node's cache (network: PyPI)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.settings import REPO_ROOT
from flows.dependencies import ensure_environment

RUNTIME_PYTHON = REPO_ROOT / ".venv-runtime" / "bin" / "python"


def test_ensure_environment_installs_from_the_index_once(tmp_path: Path) -> None:
    root = tmp_path / "envs"
    lines: list[str] = []
    started = time.monotonic()
    target = ensure_environment(["mergedeep==1.3.4"], root, RUNTIME_PYTHON, log=lines.append)
    first = time.monotonic() - started
    assert target is not None and (target / "mergedeep" / "__init__.py").is_file()
    assert target.stat().st_mode & 0o777 == 0o755, "confined programs run as another user and must read it"
    before = target.stat()

    started = time.monotonic()
    again = ensure_environment(["mergedeep==1.3.4"], root, RUNTIME_PYTHON, log=lines.append)
    reuse = time.monotonic() - started
    after = target.stat()
    assert again == target
    assert after.st_ino == before.st_ino, "not built again"
    assert (target / "mergedeep" / "__init__.py").stat().st_mtime_ns <= before.st_mtime_ns
    assert after.st_mtime_ns > before.st_mtime_ns, "its use is marked, for the collector"
    assert lines[0] == "Installing dependencies: mergedeep==1.3.4"
    assert lines[1].startswith("Installed dependencies in ")
    assert lines[2] == "Using installed dependencies: mergedeep==1.3.4"
    print(f"\nmergedeep env: first build {first:.2f} s, cached reuse {reuse * 1000:.2f} ms", file=sys.stderr)

    version = subprocess.run(
        [str(RUNTIME_PYTHON), "-c", "import mergedeep; print(mergedeep.__version__, mergedeep.__file__)"],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert version[0] == "1.3.4" and version[1].startswith(str(target))
