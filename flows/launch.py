"""Starting a job's program: forked from the worker's launcher, or as a fresh interpreter, and
confined to its job.

Each Ray worker keeps one launcher (flows/launcher.py): a runtime interpreter that imported
qiskit, qiskit_serverless and qiskit_ibm_runtime once and forks a child per job, so a program
starts in milliseconds instead of paying seconds of imports. A program falls back to a fresh
interpreter when it sets variables read at import time, when one of its dependencies is a module
the launcher has already imported (the fork would run the launcher's copy), or when the launcher
is not available.

Confined (the default), the program sees its artifact, its data areas at /data and /function_data,
the runtime read-only, and nothing else of the platform (flows/sandbox.py); where the launcher cannot
start, a confined job fails rather than run unconfined.
"""

from __future__ import annotations

import array
import io
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Protocol

from core.job_spec import JobSpec
from flows.node import NodeRuntime

LAUNCHER = Path(__file__).with_name("launcher.py")
DATA, FUNCTION_DATA = Path("/data"), Path("/function_data")
# What a program reads of the host, read-only: system libraries and tools, TLS roots, name resolution.
HOST_READ_ONLY = (
    "/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin",
    "/etc/ssl", "/etc/ca-certificates", "/etc/alternatives", "/etc/resolv.conf", "/etc/hosts",
    "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/localtime", "/etc/mime.types",
)  # fmt: skip
READY_SECONDS = 120.0  # the launcher's imports, on a busy node
# Variables read while qiskit is imported: a program setting one gets a fresh interpreter.
IMPORT_TIME_ENV = re.compile(r"^(PYTHON|QISKIT_|OMP_|MKL_|OPENBLAS_|RAYON_|RUST_)")
PASSED_THROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


class Program(Protocol):
    """A running program as the Ray task follows it."""

    pid: int
    stdout: IO[bytes] | None

    def wait(self) -> int: ...


def base_environment(python: Path) -> dict[str, str]:
    """What a program inherits from the host: never the platform's own settings or secrets."""
    env = {name: os.environ[name] for name in PASSED_THROUGH_ENV if name in os.environ}
    env["PATH"] = os.pathsep.join(filter(None, [str(python.parent), env.get("PATH", "/usr/bin:/bin")]))
    return env


class Launched:
    """A program forked by the launcher: not our child, so its exit code comes from the launcher."""

    def __init__(self, launcher: Launcher, pid: int, stdout: IO[bytes]) -> None:
        self.launcher = launcher
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        # A handle on this very process: it cannot be confused with a later one that reuses the pid.
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except OSError:
            self.pidfd = None  # it has ended already (or no descriptor is left: followed by its pid)

    def wait(self) -> int:
        try:
            return self.launcher.exit_code(self.pid)
        finally:
            if self.pidfd is not None:
                os.close(self.pidfd)
                self.pidfd = None

    def ended_within(self, seconds: float) -> int | None:
        """The exit code if the program ends within `seconds`, else None."""
        if self.pidfd is not None:
            ready, _, _ = select.select([self.pidfd], [], [], seconds)
            if not ready:
                return None
        elif _alive(self.pid):
            time.sleep(seconds)
            return None
        return self.wait()  # reaped by the launcher, which sends its exit code next


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, as the job's own user
    return True


def ended_within(process: Program, seconds: float) -> int | None:
    """The program's exit code if it ends within `seconds`, else None; returns at once when it does."""
    if isinstance(process, Launched):
        return process.ended_within(seconds)
    try:
        return process.wait(timeout=seconds)  # type: ignore[call-arg]  # a subprocess.Popen
    except subprocess.TimeoutExpired:
        return None


class Launcher:
    """This worker's launcher process and its control socket (one job at a time per Ray worker)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.control: socket.socket | None = None
        self.replies: io.BufferedReader | None = None
        self.preloaded: frozenset[str] = frozenset()
        self.exits: dict[int, int] = {}

    def start(self, python: Path, modules: list[str]) -> bool:
        """Start the launcher unless it runs; True once it has imported its modules."""
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                return True
            ours, theirs = socket.socketpair()
            try:
                self.process = subprocess.Popen(
                    [str(python), "-u", str(LAUNCHER), str(theirs.fileno()), ",".join(modules)],
                    env={**base_environment(python), "PYTHONUNBUFFERED": "1"},
                    pass_fds=[theirs.fileno()],
                    stdin=subprocess.DEVNULL,
                    stdout=sys.stderr,
                    stderr=sys.stderr,
                )
            except OSError:
                ours.close()
                return False
            finally:
                theirs.close()
            ours.settimeout(READY_SECONDS)
            self.control, self.replies = ours, ours.makefile("rb")
            try:
                hello = self._reply()
            except (OSError, ValueError):
                self._close()
                return False
            ours.settimeout(None)
            self.preloaded = frozenset(hello.get("ready", ()))
            return True

    def launch(self, request: dict[str, Any]) -> Launched | None:
        """Fork the program; None when the launcher cannot (the caller starts it cold)."""
        with self.lock:
            if self.control is None:
                return None
            read_end, write_end = os.pipe()
            try:
                payload = json.dumps(request).encode() + b"\n"
                fds = array.array("i", [write_end])
                self.control.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
                reply = self._reply()
                while "pid" in reply and "exit" in reply:  # a previous job's ending, read late
                    self.exits[reply["pid"]] = reply["exit"]
                    reply = self._reply()
            except (OSError, ValueError):
                os.close(read_end)
                self._close()
                return None
            finally:
                os.close(write_end)
            return Launched(self, int(reply["pid"]), os.fdopen(read_end, "rb"))

    def exit_code(self, pid: int) -> int:
        with self.lock:
            while pid not in self.exits:
                try:
                    reply = self._reply()
                except (OSError, ValueError):
                    self._close()
                    return -int(signal.SIGKILL)  # the launcher died and took the program with it
                if "exit" in reply:
                    self.exits[reply["pid"]] = reply["exit"]
            return self.exits.pop(pid)

    def conflicts(self, packages: Path | None) -> bool:
        """Whether a job's packages hold a module the launcher has already imported."""
        if packages is None:
            return False
        names = {entry.name.removesuffix(".py") for entry in packages.iterdir()}
        return not names.isdisjoint(self.preloaded)

    def _reply(self) -> dict[str, Any]:
        assert self.replies is not None
        line = self.replies.readline()
        if not line:
            raise OSError("the launcher closed its control socket")
        return json.loads(line)  # type: ignore[no-any-return]

    def _close(self) -> None:
        if self.control is not None:
            self.control.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.control = self.replies = self.process = None


LAUNCHER_OF_THIS_WORKER = Launcher()


class Confinement:
    """Where a confined job's directories are, outside and as its program sees them."""

    def __init__(
        self, runtime: NodeRuntime, workdir: Path, artifact: Path, data: Path, function_data: Path | None
    ) -> None:
        self.runtime = runtime
        self.workdir = workdir
        self.writable = {str(artifact): artifact, str(DATA): data}
        if function_data is not None:
            self.writable[str(FUNCTION_DATA)] = function_data

    def plan(self, packages: Path | None) -> dict[str, Any]:
        """The sandbox plan (flows/sandbox.py), after handing the job's directories to its user."""
        uid = self.runtime.sandbox_uid
        read_only = {path: path for path in HOST_READ_ONLY}
        read_only.update(self._identity_files(uid))
        if packages is not None:
            read_only[str(packages)] = str(packages)
        if os.geteuid() == 0:
            for directory in self.writable.values():
                hand_over(directory, uid)
        return {
            "root": str(self.workdir / "root"),
            "ro": read_only,
            "rw": {inside: str(outside) for inside, outside in self.writable.items()},
            "uid": uid,
            "gid": uid,
            "tmp_mb": self.runtime.tmp_mb,
        }

    def _identity_files(self, uid: int) -> dict[str, str]:
        """/etc/passwd and /etc/group naming only the program's user (some libraries look it up)."""
        passwd, group = self.workdir / "passwd", self.workdir / "group"
        passwd.write_text(f"job:x:{uid}:{uid}:job:/tmp:/usr/sbin/nologin\n")
        group.write_text(f"job:x:{uid}:\n")
        return {"/etc/passwd": str(passwd), "/etc/group": str(group)}


def hand_over(directory: Path, uid: int) -> None:
    """Make the directory tree the program's (it runs as `uid`); the platform, as root, still reads it."""
    for path in [directory, *directory.rglob("*")]:
        try:
            if path.lstat().st_uid != uid:
                os.lchown(path, uid, uid)
        except FileNotFoundError:
            continue


def start_program(
    spec: JobSpec,
    artifact_dir: Path,
    env: dict[str, str],
    runtime: NodeRuntime,
    packages: Path | None = None,
    confinement: Confinement | None = None,
) -> Program:
    """Fork the program from the launcher when it may be, else have the launcher start a fresh
    interpreter; without the launcher, start `python <entrypoint>` only when unconfined."""
    launcher = LAUNCHER_OF_THIS_WORKER
    modules = runtime.launcher_modules if runtime.warm_interpreters else []
    if (runtime.warm_interpreters or confinement is not None) and launcher.start(runtime.runtime_python, modules):
        fresh = (
            not runtime.warm_interpreters
            or any(IMPORT_TIME_ENV.match(name) for name in spec.program_env)
            or launcher.conflicts(packages)
        )
        request = {
            "cwd": str(artifact_dir),
            "env": env,
            "entrypoint": spec.entrypoint,
            "fresh": fresh,
            "limits": runtime.limits,
            "sandbox": confinement.plan(packages) if confinement is not None else None,
        }
        launched = launcher.launch(request)
        if launched is not None:
            return launched
    if confinement is not None:
        raise RuntimeError("The program launcher is not available on this node, so the job cannot run confined.")
    return subprocess.Popen(
        [str(runtime.runtime_python), spec.entrypoint],
        cwd=artifact_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
