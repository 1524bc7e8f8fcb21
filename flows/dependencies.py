"""A program's extra packages, installed once per node into a cached directory.

The allow-listed requirements of a job are installed with the runtime's pip into
`<root>/<sha256 of the sorted list>` (no dependencies, wheels only, so nothing of a
package runs at install time); the program then finds them on its import path.
Concurrent jobs on one node serialise on a file lock and build the directory once;
it appears by an atomic rename, so a directory that exists is complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.requirements import Requirement

from core.allow_list import allowed_entry, version_allowed

INSTALL_TIMEOUT_SECONDS = 600
ERROR_LINES = 20


class DependencyInstallError(RuntimeError):
    """pip could not install a job's dependencies."""


def install_specs(requirements: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """What pip is given: a bare name becomes its allow-list entry (for a range, pip picks the best match).

    Checked again here: the allow-list may have changed since the program was uploaded.
    """
    allowed = list(allowed)
    specs: list[str] = []
    for text in requirements:
        requirement = Requirement(text)
        entry = allowed_entry(requirement, allowed)
        pins = [pin.version for pin in requirement.specifier]
        if entry is None or not all(version_allowed(pin, entry) for pin in pins):
            raise DependencyInstallError(f"Dependency {text} is not in the allow-list any more; upload it again.")
        specs.append(text if pins else entry)
    return specs


def environment_key(requirements: Iterable[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(set(requirements))).encode()).hexdigest()


def ensure_environment(
    requirements: list[str], root: Path, python: Path, log: Callable[[str], None] | None = None
) -> Path | None:
    """The directory holding these packages, built on first use; None when there are none."""
    wanted = sorted({text.strip() for text in requirements if text.strip()})
    if not wanted:
        return None
    say = log or (lambda _line: None)
    key = environment_key(wanted)
    target = root / key
    listed = ", ".join(wanted)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "a") as lock:
        # Shared while a job takes the set (and, through `in_use`, while it runs), exclusive while
        # it is built or collected; released when the file closes, or when the process dies.
        fcntl.flock(lock, fcntl.LOCK_SH)
        if not target.is_dir():
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.is_dir():
                say(f"Installing dependencies: {listed}")
                started = time.monotonic()
                _install(wanted, root, key, python)
                say(f"Installed dependencies in {time.monotonic() - started:.1f} s")
                return target
        os.utime(target)  # its last use, which the collector reads
    say(f"Using installed dependencies: {listed}")
    return target


@contextmanager
def in_use(target: Path | None) -> Iterator[None]:
    """Hold a job's dependency set for its run: the collector never removes a set held."""
    if target is None:
        yield
        return
    with open(target.parent / f"{target.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield


def collect_environments(root: Path, unused_since: float) -> tuple[int, int]:
    """Remove the dependency sets last used before `unused_since` (a timestamp): (sets, bytes)."""
    removed = freed = 0
    if not root.is_dir():
        return removed, freed
    for target in root.iterdir():
        if not target.is_dir() or target.name.startswith("."):
            continue
        with open(root / f"{target.name}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a job is taking it right now
            if target.stat().st_mtime >= unused_since:
                continue
            size = tree_bytes(target)
            # Gone at once for jobs; `_install` clears what a failed removal leaves.
            doomed = root / f".{target.name}.removed-{os.getpid()}-{time.time_ns()}"
            os.rename(target, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            removed, freed = removed + 1, freed + size
    return removed, freed


def tree_bytes(folder: Path) -> int:
    return sum(file.stat().st_size for file in folder.rglob("*") if file.is_file() and not file.is_symlink())


def _install(wanted: list[str], root: Path, key: str, python: Path) -> None:
    for stale in root.glob(f".{key}.*"):  # left by a build that was killed; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=root))
    command = [str(python), "-m", "pip", "install", "--no-deps", "--only-binary=:all:", "--no-input"]
    command += ["--disable-pip-version-check", "--target", str(staging), *wanted]
    env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        try:
            done = subprocess.run(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=INSTALL_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DependencyInstallError(
                f"Installing dependencies failed: pip did not finish in {INSTALL_TIMEOUT_SECONDS} s."
            ) from None
        except OSError as error:
            raise DependencyInstallError(f"Installing dependencies failed: cannot run {python}: {error}") from None
        if done.returncode != 0:
            lines = done.stdout.decode(errors="replace").splitlines()
            errors = [line for line in lines if line.startswith("ERROR")] or lines
            detail = "\n".join(errors[-ERROR_LINES:])
            raise DependencyInstallError(f"Installing dependencies failed (pip exit code {done.returncode}):\n{detail}")
        staging.chmod(0o755)  # mkdtemp makes it private; programs run as another user read it
        os.rename(staging, root / key)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
