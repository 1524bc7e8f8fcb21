"""`make run`: start what is missing of the stack, in the foreground, and stop all of it on Ctrl-C.
A process that dies meanwhile is started again, after a pause that grows with each death in a row.

Embedded defaults: a PostgreSQL server (the database of Prefect and of the gateway),
a Prefect server, a local Ray head, local storage, the executor and the gateway, all
under one data directory. A setting pointing at
an existing Prefect server or Ray cluster means that part is not started here.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings, platform_env, ray_auth_env
from deployments.postgres import EmbeddedPostgres

BIN = Path(sys.executable).parent
PROFILE = "qiskit-serverless"
# A process that dies is restarted after FIRST_PAUSE, doubled for each death in a row up to
# LONGEST_PAUSE; one that ran STABLE_SECONDS before dying starts the count again.
FIRST_PAUSE, LONGEST_PAUSE, STABLE_SECONDS = 1.0, 60.0, 60.0


@dataclass
class Supervised:
    """How a process of the stack was started, to start it the same way again."""

    command: list[str]
    env: dict[str, str]
    popen: dict[str, Any]
    stop_signal: signal.Signals = signal.SIGTERM
    service: bool = False  # PostgreSQL, Prefect, Ray, S3: stopped after the processes that use them
    started: float = 0.0
    deaths: int = 0
    restart_at: float | None = None


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.processes: dict[str, subprocess.Popen[bytes]] = {}  # in start order
        self.supervised: dict[str, Supervised] = {}
        self.logs = settings.data_dir / "logs"
        self.prefect_login: str | None = None
        if settings.prefect_api_url is None:
            self.prefect_login = prefect_credentials(settings)
            os.environ["PREFECT_PROFILES_PATH"] = str(prefect_profiles(settings))
        self.env = {**os.environ, **platform_env(settings)}

    def _spawn(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        service: bool = False,
        **popen: Any,
    ) -> None:
        self.supervised[name] = Supervised(command, env if env is not None else self.env, popen, stop_signal, service)
        self._start(name)

    def _start(self, name: str) -> None:
        spec = self.supervised[name]
        self.logs.mkdir(parents=True, exist_ok=True)
        spec.started, spec.restart_at = time.monotonic(), None
        with open(self.logs / f"{name}.log", "ab") as log_file:
            self.processes[name] = subprocess.Popen(
                spec.command,
                env=spec.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **spec.popen,
            )

    def _wait(self, name: str, ready: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self.processes.get(name)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.logs / (name + '.log')}")
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} not ready after {timeout:.0f} s; see {self.logs / (name + '.log')}")

    def start_postgres(self) -> None:
        write_secret_once(self.settings.postgres_password_file, secrets.token_hex(24))
        postgres = EmbeddedPostgres(self.settings)
        postgres.prepare()
        self._spawn("postgres", postgres.command(), postgres.environment(), service=True, **postgres.run_as())
        self._wait("postgres", postgres.ready, 60)
        postgres.ensure_databases()

    def prefect_environment(self) -> dict[str, str]:
        env = {
            **self.env,
            "PREFECT_HOME": str((self.settings.data_dir / "prefect").resolve()),
            "PREFECT_UI_API_URL": self.settings.prefect_url,
        }
        if self.settings.embedded_database == "postgres":
            # Only the server holds it: platform_env never copies it to other processes.
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.settings.embedded_postgres_url("prefect", "asyncpg")
        return env

    def start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.uses_embedded_postgres:
            self.start_postgres()
        if settings.prefect_api_url is None:
            self._spawn(
                "prefect",
                [
                    str(BIN / "prefect"),
                    "server",
                    "start",
                    "--host",
                    settings.prefect_host,
                    "--port",
                    str(settings.prefect_port),
                ],
                self.prefect_environment(),
                service=True,
            )
        self._wait("prefect", lambda: http_ok(settings.prefect_url + "/health"), 90)
        if settings.ray_address is None:
            self._spawn(
                "ray",
                [
                    str(BIN / "ray"), "start", "--head", "--block",
                    "--node-ip-address", "127.0.0.1",
                    "--port", str(settings.ray_port),
                    "--dashboard-host", "127.0.0.1",
                    "--dashboard-port", str(settings.ray_dashboard_port),
                    "--num-cpus", str(settings.ray_num_cpus),
                    "--temp-dir", str((settings.data_dir / "ray").resolve()),
                    "--disable-usage-stats",
                ],
                ray_environment(settings),
                service=True,
            )  # fmt: skip
            self._wait("ray", lambda: _tcp_ok(settings.ray_cluster), 90)
        # SIGINT: a stack that stops stops its jobs at once (SIGTERM would leave them running).
        self._spawn("executor", [sys.executable, "-m", "deployments.executor"], stop_signal=signal.SIGINT)
        self._spawn("maintenance", [sys.executable, "-m", "gateway.maintenance"])
        self._spawn(
            "gateway",
            [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
             "--host", settings.host, "--port", str(settings.port), "--no-access-log"],
        )  # fmt: skip
        self._wait("gateway", lambda: http_ok(f"http://{settings.host}:{settings.port}/readiness"), 120)

    def stop(self) -> None:
        """The platform's processes first (an executor stopping its jobs saves what they wrote, in
        Prefect and storage), then the services they use."""
        for services in (False, True):
            group = [(name, process) for name, process in reversed(self.processes.items())]
            group = [(name, process) for name, process in group if self.supervised[name].service is services]
            for name, process in group:
                # To the group: a leader that died may have left its group behind.
                _kill_group(process, self.supervised[name].stop_signal)
            deadline = time.monotonic() + 15
            for _, process in group:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _kill_group(process, signal.SIGKILL)
                    process.wait()

    def watch(self) -> None:
        """Block until Ctrl-C, starting again any process that dies (see FIRST_PAUSE)."""
        while True:
            for name, process in list(self.processes.items()):
                if process.poll() is None:
                    continue
                spec, now = self.supervised[name], time.monotonic()
                if spec.restart_at is None:
                    _kill_group(process, signal.SIGKILL)  # what it started (ray's raylet, …) goes with it
                    spec.deaths = 1 if now - spec.started >= STABLE_SECONDS else spec.deaths + 1
                    pause = min(LONGEST_PAUSE, FIRST_PAUSE * 2 ** (spec.deaths - 1))
                    spec.restart_at = now + pause
                    log = self.logs / f"{name}.log"
                    print(
                        f"{name} exited with {process.returncode}; see {log}. Restarting in {pause:.0f} s.", flush=True
                    )
                elif now >= spec.restart_at:
                    self._start(name)
                    print(f"{name} restarted.", flush=True)
            time.sleep(0.5)


def _kill_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def write_secret_once(path: Path, content: str) -> None:
    """Create a file only its owner can read, the first time; later starts keep what it holds."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(content)


def prefect_profiles(settings: Settings) -> Path:
    return (settings.data_dir / "prefect-profiles.toml").resolve()


def prefect_credentials(settings: Settings) -> str:
    """The embedded Prefect server's credentials, generated on first start into a Prefect profiles
    file (mode 0600) that every platform process reads through PREFECT_PROFILES_PATH, so the string
    itself is in no environment (nor in the Ray workers' runtime_env). Returns the UI login."""
    path = prefect_profiles(settings)
    login = f"admin:{secrets.token_urlsafe(24)}"
    write_secret_once(
        path,
        f'active = "{PROFILE}"\n\n[profiles.{PROFILE}]\n'
        f'PREFECT_API_AUTH_STRING = "{login}"\nPREFECT_SERVER_API_AUTH_STRING = "{login}"\n',
    )
    with path.open("rb") as handle:
        return str(tomllib.load(handle)["profiles"][PROFILE]["PREFECT_API_AUTH_STRING"])


def ray_environment(settings: Settings) -> dict[str, str]:
    """The embedded Ray head's whole environment: no platform setting or secret (its workers get what
    they need from the executor), and its token, generated on first start."""
    path = settings.ray_token_path
    assert path is not None  # the embedded head always has one
    write_secret_once(path, secrets.token_hex(32))
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") if name in os.environ}
    return {**env, **ray_auth_env(settings)}


def describe_database(settings: Settings) -> str:
    """Where the gateway's records are (never the URL itself: it may hold a password)."""
    if settings.database_url:
        return "the QS_DATABASE_URL server"
    if settings.embedded_database == "sqlite":
        return settings.db_url.removeprefix("sqlite:///")
    return f"PostgreSQL on 127.0.0.1:{settings.postgres_port}, in {settings.postgres_dir}"


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except Exception:
        return False


def _tcp_ok(address: str) -> bool:
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def serve(stack: Stack, banner: Callable[[], str]) -> None:
    """Start the stack, say where everything is, keep it running until Ctrl-C, then stop it all."""
    # Installed explicitly: a stack started in the background inherits an ignored SIGINT.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack.start()
        print(banner(), flush=True)
        stack.watch()
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping…", flush=True)
        stack.stop()


def main() -> None:
    settings = Settings()
    stack = Stack(settings)

    def banner() -> str:
        base = f"http://{settings.host}:{settings.port}"
        login = f"  (login: {stack.prefect_login})" if stack.prefect_login else ""
        return (
            "\nQiskit Serverless on Prefect is running.\n"
            f"  API:        {base}/api/v1/\n"
            f"  API docs:   {base}/docs\n"
            f"  Prefect UI: {settings.prefect_url.removesuffix('/api')}{login}\n"
            f"  Ray:        {settings.ray_cluster}\n"
            f"  Storage:    {settings.storage_root}\n"
            f"  Database:   {describe_database(settings)}\n"
            f"  Directory:  {settings.seed_file or 'no seed file'} (add users: python -m gateway.cli users add NAME)\n"
            f"  Logs:       {stack.logs}\n"
            "Press Ctrl-C to stop everything."
        )

    serve(stack, banner)


if __name__ == "__main__":
    main()
