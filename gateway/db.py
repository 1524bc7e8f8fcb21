"""The gateway's own store: who owns what, program metadata, events. Never run state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    create_engine,
    event,
    inspect,
    literal,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.schema import ScalarElementColumnDefault


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the client expects."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    pass


class InvalidText(ValueError):
    """A text value the store cannot keep (PostgreSQL refuses NUL characters in text)."""


@event.listens_for(Session, "before_flush")
def _refuse_nul(session: Session, *_: object) -> None:
    """One rule for every text column, on SQLite and PostgreSQL alike."""
    for row in (*session.new, *session.dirty):
        for value in vars(row).values():
            if isinstance(value, str) and "\x00" in value:
                raise InvalidText("Text values cannot contain NUL characters.")


class User(Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(150), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Group(Base):
    __tablename__ = "groups"
    name: Mapped[str] = mapped_column(String(150), primary_key=True)


class Membership(Base):
    __tablename__ = "group_members"
    group: Mapped[str] = mapped_column(ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), primary_key=True, index=True)


class Provider(Base):
    __tablename__ = "providers"
    name: Mapped[str] = mapped_column(String(150), primary_key=True)
    image_registry: Mapped[str | None] = mapped_column(String(512), default=None)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProviderAdmin(Base):
    """Members of these groups administer the provider: upload, provider jobs, logs and files."""

    __tablename__ = "provider_admins"
    provider: Mapped[str] = mapped_column(ForeignKey("providers.name", ondelete="CASCADE"), primary_key=True)
    group: Mapped[str] = mapped_column(ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True)


class Grant(Base):
    """A group's permission on a provider program: `view` (list, get) or `run` (which implies view).

    `trial` marks the group's runs as trial runs (ENV_ACCESS_TRIAL, business model TRIAL).
    """

    __tablename__ = "program_grants"
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id", ondelete="CASCADE"), primary_key=True)
    group: Mapped[str] = mapped_column(ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True)
    permission: Mapped[str] = mapped_column(String(8), default="view")
    trial: Mapped[bool] = mapped_column(Boolean, default=False)


class Program(Base):
    __tablename__ = "programs"
    # A custom program is unique per (author, title), a provider program per (provider, title).
    __table_args__ = (
        Index(
            "ux_custom_program",
            "author",
            "title",
            unique=True,
            sqlite_where=text("provider IS NULL"),
            postgresql_where=text("provider IS NULL"),
        ),
        Index("ux_provider_program", "provider", "title", unique=True),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    author: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str | None] = mapped_column(String(255), default=None)
    entrypoint: Mapped[str | None] = mapped_column(String(255), default=None)
    image: Mapped[str | None] = mapped_column(String(512), default=None)
    runner: Mapped[str] = mapped_column(String(16), default="ray")
    artifact: Mapped[str | None] = mapped_column(String(512), default=None)
    dependencies: Mapped[str] = mapped_column(Text, default="[]")
    env_vars: Mapped[str] = mapped_column(Text, default="{}")
    description: Mapped[str | None] = mapped_column(Text, default=None)
    version: Mapped[str | None] = mapped_column(String(64), default=None)
    arguments_schema: Mapped[str | None] = mapped_column(Text, default=None)
    retries: Mapped[int | None] = mapped_column(default=None)  # the runs' default (RunConfig.retries)
    retry_delay_seconds: Mapped[int | None] = mapped_column(default=None)
    sizes: Mapped[str] = mapped_column(Text, default="{}")
    default_size: Mapped[str | None] = mapped_column(String(64), default=None)
    type: Mapped[str] = mapped_column(String(16), default="GENERIC")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_message: Mapped[str | None] = mapped_column(Text, default=None)
    deployment_id: Mapped[str | None] = mapped_column(String(36), default=None)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Job(Base):
    """A job, and the read model of its run: `status` follows the flow run's state (Prefect's
    events, and a periodic reconciliation), so reads and lists never wait on Prefect.

    A job the gateway records waits in this table (`dispatched` false) until the dispatcher
    creates its flow run; until then `flow_run_id` holds the job's own id.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_job_author_created", "author", "created"),
        Index("ix_job_author_status", "author", "status"),
        Index("ix_job_dispatch", "dispatched", "created"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    author: Mapped[str] = mapped_column(ForeignKey("users.name"))
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    flow_run_id: Mapped[str] = mapped_column(String(36), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    sub_status: Mapped[str | None] = mapped_column(String(32), default=None)
    trial: Mapped[bool] = mapped_column(default=False)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    # Rows made before the dispatcher existed had their flow run at once: true for them.
    dispatched: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="QUEUED")
    # When the state behind `status` was entered: an older state never overwrites a newer one.
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    retries: Mapped[int] = mapped_column(default=0)
    retry_delay_seconds: Mapped[int] = mapped_column(default=0)
    # Set once the maintenance flow removed the job's data (gateway/jobs/retention.py).
    data_removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    @property
    def run_id(self) -> str | None:
        """The job's flow run, once the dispatcher made it."""
        return self.flow_run_id if self.dispatched else None


class Submission(Base):
    """A run request's `Idempotency-Key` and the job it made, kept 24 h (gateway/jobs/idempotency.py)."""

    __tablename__ = "submissions"
    author: Mapped[str] = mapped_column(ForeignKey("users.name"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the request: one key, one request
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class JobEvent(Base):
    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(32))
    context: Mapped[str] = mapped_column(String(32))
    data: Mapped[str] = mapped_column(Text, default="{}")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RuntimeJob(Base):
    __tablename__ = "runtime_jobs"
    runtime_job: Mapped[str] = mapped_column(String(255), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    runtime_session: Mapped[str | None] = mapped_column(String(255), default=None)


class Database:
    """The gateway's store at one URL: its engine and its sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        upgrade(self.engine)

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        self.engine.dispose()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = url.split(":///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        created = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(created, "connect")
        def _sqlite_pragmas(connection, _):  # type: ignore[no-untyped-def]
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return created
    return create_engine(url, pool_pre_ping=True)


def upgrade(target: Engine) -> None:
    """Create missing tables and add the columns newer code expects to tables an older version
    made. Only additive changes happen here; nothing is dropped or rewritten."""
    Base.metadata.create_all(target)
    inspector = inspect(target)
    with target.begin() as connection:
        for table in Base.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    connection.execute(text(_add_column(target, table.name, column)))
            for index in table.indexes:  # create_all makes a table's indexes only with the table
                index.create(connection, checkfirst=True)


def _add_column(target: Engine, table: str, column: Column[Any]) -> str:
    kind = column.type.compile(target.dialect)
    default = column.default.arg if isinstance(column.default, ScalarElementColumnDefault) else None
    if default is None:  # existing rows get NULL, whatever the model says
        return f"ALTER TABLE {table} ADD COLUMN {column.name} {kind}"
    value = literal(default, column.type).compile(target, compile_kwargs={"literal_binds": True})
    return f"ALTER TABLE {table} ADD COLUMN {column.name} {kind} NOT NULL DEFAULT {value}"
