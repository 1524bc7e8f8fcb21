"""The platform's one configuration object, read from `QS_*` environment variables.

Every address is a setting so the same code runs embedded (the defaults) or
distributed (pointed at an existing Prefect server, Ray cluster and bucket).
Only process entry points build a `Settings()`; everything else is handed one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
# The embedded PostgreSQL server's superuser and the databases it holds.
POSTGRES_USER = "platform"
RAY_NAMESPACE = "qiskit-serverless"  # the platform's named actors (flows/supervisor.py) live here
EMBEDDED_DATABASES = ("prefect", "gateway")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QS_", extra="ignore")

    data_dir: Path = Field(default=REPO_ROOT / ".data", description="Root of everything the embedded stack keeps.")

    # Prefect
    prefect_api_url: str | None = Field(
        default=None, description="URL of an existing Prefect API; unset starts an embedded server."
    )
    prefect_host: str = "127.0.0.1"
    prefect_port: int = 4200
    work_pool: str = Field(default="qiskit-serverless", description="Prefect work pool of program deployments.")

    # Ray
    ray_address: str | None = Field(default=None, description="host:port of an existing Ray cluster; unset starts one.")
    ray_port: int = Field(default=6390, description="GCS port of the embedded Ray head (6379 is Redis's).")
    ray_dashboard_port: int = 8265
    ray_num_cpus: int = Field(
        default=8, description="Logical CPUs of the embedded Ray head: the number of jobs that run at once."
    )
    job_num_cpus: float = Field(default=1.0, description="Ray CPUs reserved by one job's executor task.")
    job_resources: list[str] = Field(
        default=[],
        description="Custom Ray resources a run may ask for in its config (`resources`), such as the label of a "
        "node group; a job that asks for one runs only on nodes that offer it.",
    )
    ray_auth_token_file: Path | None = Field(
        default=None,
        description="File holding the Ray cluster's token (RAY_AUTH_MODE=token); the embedded head's is "
        "<data_dir>/ray-auth-token, generated on first start.",
    )

    # Storage
    storage_url: str | None = Field(
        default=None, description="fsspec URL of the storage root; default file://<data_dir>/storage."
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, Ceph, moto, …).")
    s3_key: str | None = None
    s3_secret: SecretStr | None = None
    s3_region: str | None = None
    max_file_bytes: int = Field(default=512 * 1024 * 1024, description="Largest user file upload (413 past it).")

    # Gateway
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None, description="Gateway URL as programs on Ray workers reach it (ENV_JOB_GATEWAY_HOST)."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the gateway's database; default the embedded database."
    )
    embedded_database: Literal["postgres", "sqlite"] = Field(
        default="postgres",
        description="Database of the embedded Prefect server and of the gateway when they have no URL: a "
        "PostgreSQL server started under <data_dir>/postgres, or SQLite files in <data_dir>.",
    )
    postgres_port: int = Field(default=5433, description="Loopback port of the embedded PostgreSQL server.")
    seed_file: Path | None = Field(
        default=None, description="TOML directory seed applied at start (users, groups, providers); for development."
    )

    # Limits
    max_artifact_bytes: int = 50 * 1024 * 1024
    max_arguments_bytes: int = 1024 * 1024
    max_active_jobs: int = Field(
        default=50, description="Active (queued, pending, running) jobs per user (429 past it)."
    )
    max_result_bytes: int = Field(
        default=60 * 1024 * 1024,
        description="Largest result a job may save; past it the result is refused and the job fails.",
    )
    logs_size_limit: int = Field(default=50 * 1024 * 1024, description="Bytes of job log kept (the tail).")
    prefect_log_lines: int = Field(default=10_000, description="Program output lines copied to the Prefect UI per job.")
    stop_wait_seconds: float = Field(default=5.0, description="How long /stop/ waits for the job to be STOPPED.")
    stop_grace_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long a stopped job's Ray task has to end its program before it is killed; "
        "a task still saving the job's data area is waited for.",
    )
    dispatch_window: int = Field(
        default=32,
        ge=0,
        description="Flow runs of the work pool due or under way at most: more jobs wait QUEUED in the gateway's "
        "store until runs end (0 pauses dispatching).",
    )

    # Program runtime
    runtime_python: Path = Field(
        default=REPO_ROOT / ".venv-runtime" / "bin" / "python", description="Interpreter that runs programs."
    )
    warm_interpreters: bool = Field(
        default=True,
        description="Fork programs from a launcher that has imported the runtime once (per Ray worker).",
    )
    launcher_modules: str = Field(
        default="qiskit_serverless,qiskit,qiskit_ibm_runtime",
        description="Comma-separated modules the launcher imports before forking programs.",
    )
    scratch_dir: Path | None = Field(default=None, description="Where jobs unpack; default <data_dir>/scratch.")
    sandbox: bool = Field(
        default=True, description="Confine each program to its job (Linux namespaces); false runs it unconfined."
    )
    sandbox_uid: int = Field(default=65534, description="Host uid (and gid) programs run as when the platform is root.")
    job_memory_mb: int = Field(
        default=16384, description="Private memory a program may allocate beyond the runtime's (MiB)."
    )
    job_max_processes: int = Field(default=4096, description="Processes of the sandbox user (RLIMIT_NPROC).")
    job_max_open_files: int = Field(default=4096, description="Open files per process of a job.")
    job_max_file_mb: int = Field(default=10240, description="Largest file a job may write (MiB).")
    job_cpu_seconds: int = Field(default=0, description="CPU seconds per process of a job; 0 is unlimited.")
    job_max_seconds: int = Field(
        default=86_400, ge=0, description="Longest a job may run; past it the job is stopped. 0 is unlimited."
    )
    retention_days: float = Field(
        default=30,
        ge=0,
        description="Days a finished job's data (snapshot, arguments, result, logs) is kept; 0 keeps it forever.",
    )
    env_retention_days: float = Field(
        default=7, ge=0, description="Days an unused dependency set stays cached on a node; 0 keeps them forever."
    )
    maintenance_cron: str = Field(
        default="30 3 * * *",
        description="When the maintenance deployment runs (cron, UTC); empty: only when run by hand.",
    )
    job_tmp_mb: int = Field(default=4096, description="Size of a job's private /tmp and /dev/shm (memory-backed, MiB).")
    allowed_dependencies_file: Path = Field(
        default=REPO_ROOT / "requirements" / "allowed-dependencies.txt",
        description="Allow-list of extra packages programs may depend on (one requirement per line).",
    )

    @property
    def prefect_url(self) -> str:
        return self.prefect_api_url or f"http://{self.prefect_host}:{self.prefect_port}/api"

    @property
    def ray_cluster(self) -> str:
        return self.ray_address or f"127.0.0.1:{self.ray_port}"

    @property
    def ray_token_path(self) -> Path | None:
        """Where the Ray cluster's token is: set, or the embedded head's own (an external cluster
        without the setting takes RAY_AUTH_* from the environment)."""
        if self.ray_auth_token_file is not None:
            return self.ray_auth_token_file.resolve()
        return None if self.ray_address else (self.data_dir / "ray-auth-token").resolve()

    @property
    def storage_root(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'storage').resolve()}"

    @property
    def gateway_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.embedded_database == "sqlite":
            return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"
        return self.embedded_postgres_url("gateway", "psycopg")

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.embedded_database == "postgres" and (self.prefect_api_url is None or self.database_url is None)

    @property
    def postgres_dir(self) -> Path:
        return (self.data_dir / "postgres").resolve()

    @property
    def postgres_password_file(self) -> Path:
        return (self.data_dir / "postgres-password").resolve()

    def postgres_password(self) -> str:
        try:
            return self.postgres_password_file.read_text().strip()
        except FileNotFoundError:
            raise RuntimeError(
                f"{self.postgres_password_file} is missing: start the stack (make run) once to create the database."
            ) from None

    def embedded_postgres_url(self, database: str, driver: str) -> str:
        password = self.postgres_password()
        return f"postgresql+{driver}://{POSTGRES_USER}:{password}@127.0.0.1:{self.postgres_port}/{database}"

    @property
    def scratch(self) -> Path:
        return (self.scratch_dir or self.data_dir / "scratch").resolve()


# Never copied to Ray workers (visible in the Ray dashboard): workers read storage from the Prefect block.
SECRET_SETTINGS = frozenset({"QS_S3_KEY", "QS_S3_SECRET", "QS_DATABASE_URL"})


def platform_env(settings: Settings) -> dict[str, str]:
    """Environment every platform process and Ray worker needs to reach the same services."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(("QS_", "PREFECT_")) and key not in SECRET_SETTINGS
    }
    env.update(
        {
            "PREFECT_API_URL": settings.prefect_url,
            "QS_DATA_DIR": str(settings.data_dir.resolve()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        }
    )
    env.update(ray_auth_env(settings))
    return env


def ray_auth_env(settings: Settings) -> dict[str, str]:
    """What a Ray process needs to join the cluster: where its token is (never the token itself)."""
    path = settings.ray_token_path
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path)} if path is not None else {}
