"""The gateway's store on a real PostgreSQL server, and the same test bodies on SQLite.

`QS_DATABASE_URL=postgresql+psycopg://…` is the distributed setup: the schema, the directory,
the uniqueness rules of programs, the access facts and the timestamps must behave there as on
the default SQLite store. Every test here runs on both (see the `store` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from gateway import db, directory
from gateway.access.facts import admin_groups, many_program_facts, program_facts, user_groups
from gateway.access.programs import EMPTY, ProgramFacts
from gateway.jobs.schemas import JobQuery
from gateway.jobs.service import job_rows

SEED = Path(__file__).resolve().parents[2] / "deployments" / "dev-seed.toml"
DIRECTORY_TABLES = (db.User, db.Group, db.Membership, db.Provider, db.ProviderAdmin)


def _counts(session: Session) -> dict[str, int]:
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0 for model in DIRECTORY_TABLES
    }


def _program(session: Session, author: str, title: str, provider: str | None = None) -> db.Program:
    program = db.Program(author=author, title=title, provider=provider, entrypoint="main.py")
    session.add(program)
    session.flush()
    return program


def _users(session: Session, *names: str) -> None:
    for name in names:
        directory.add_user(session, name, f"{name}-token")
    session.commit()


def test_engine_is_the_expected_backend(store: Engine) -> None:
    assert store.dialect.name in {"sqlite", "postgresql"}
    if store.dialect.name == "postgresql":
        assert store.dialect.driver == "psycopg"
        with store.connect() as connection:
            assert connection.exec_driver_sql("SELECT version()").scalar_one().startswith("PostgreSQL ")


def test_seed_is_idempotent(session: Session) -> None:
    directory.seed(session, SEED)
    first = _counts(session)
    directory.seed(session, SEED)
    assert (
        _counts(session)
        == first
        == {
            "users": 1,
            "groups": 1,
            "group_members": 1,
            "providers": 1,
            "provider_admins": 1,
        }
    )
    user = session.get(db.User, "mockuser")
    assert user is not None and user.token_hash == directory.hash_token("awesome_token")
    assert user_groups(session, "mockuser") == {"mockgroup"}
    assert admin_groups(session, "mockprovider") == {"mockgroup"}


def test_directory_and_access_facts(session: Session) -> None:
    directory.seed(session, SEED)
    _users(session, "alice", "bob", "carol")
    directory.add_member(session, "viewers", "alice")
    directory.add_member(session, "runners", "bob")
    directory.add_member(session, "runners", "alice")
    directory.add_provider(session, "ibm", ["ibm-admins"], registry="registry.example/ibm")
    directory.add_member(session, "ibm-admins", "carol")
    directory.add_provider(session, "ibm", ["ibm-admins"])  # again, without a registry: keeps it
    session.commit()

    custom = _program(session, "alice", "mine")
    served = _program(session, "mockuser", "fn", "mockprovider")
    other = _program(session, "carol", "fn", "ibm")
    directory.grant(session, "mockprovider", "fn", "viewers", "view")
    directory.grant(session, "mockprovider", "fn", "runners", "run", trial=True)
    directory.grant(session, "mockprovider", "fn", "runners", "run")  # regrant: no longer trial
    directory.grant(session, "ibm", "fn", "runners", "run", trial=True)
    session.commit()

    provider = session.get(db.Provider, "ibm")
    assert provider is not None and provider.image_registry == "registry.example/ibm"
    assert user_groups(session, "alice") == {"viewers", "runners"}
    assert user_groups(session, "bob") == {"runners"}
    assert user_groups(session, "nobody-here") == EMPTY
    assert admin_groups(session, "ibm") == {"ibm-admins"}
    assert admin_groups(session, "no-such-provider") == EMPTY
    assert admin_groups(session, None) == EMPTY

    expected = {
        custom.id: ProgramFacts(author="alice"),
        served.id: ProgramFacts(
            author="mockuser",
            provider="mockprovider",
            admin_groups=frozenset({"mockgroup"}),
            view_groups=frozenset({"viewers", "runners"}),
            run_groups=frozenset({"runners"}),
        ),
        other.id: ProgramFacts(
            author="carol",
            provider="ibm",
            admin_groups=frozenset({"ibm-admins"}),
            view_groups=frozenset({"runners"}),
            run_groups=frozenset({"runners"}),
            trial_groups=frozenset({"runners"}),
        ),
    }
    session.expire_all()
    programs = list(session.scalars(select(db.Program).order_by(db.Program.created)))
    assert many_program_facts(session, programs) == expected
    assert many_program_facts(session, [custom]) == {custom.id: expected[custom.id]}
    assert many_program_facts(session, []) == {}
    for program in programs:
        assert program_facts(session, program) == expected[program.id]

    directory.set_disabled(session, "ibm", "fn", True, "Maintenance.")
    session.commit()
    session.expire_all()
    assert directory.provider_program(session, "ibm", "fn").disabled_message == "Maintenance."


def test_membership_rows_follow_their_user(session: Session) -> None:
    """ON DELETE CASCADE: real on PostgreSQL, and on SQLite with foreign_keys=ON as gateway.db sets it."""
    _users(session, "dave")
    directory.add_member(session, "team", "dave")
    session.commit()
    user = session.get(db.User, "dave")
    assert user is not None
    session.delete(user)
    session.commit()
    assert user_groups(session, "dave") == EMPTY


def test_custom_program_is_unique_per_author_and_title(session: Session) -> None:
    _users(session, "alice")
    _program(session, "alice", "fn")
    session.commit()
    with pytest.raises(IntegrityError):
        _program(session, "alice", "fn")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(db.Program)) == 1


def test_provider_program_is_unique_per_provider_and_title_whoever_uploads(session: Session) -> None:
    directory.seed(session, SEED)
    _users(session, "alice")
    _program(session, "mockuser", "fn", "mockprovider")
    session.commit()
    with pytest.raises(IntegrityError):
        _program(session, "alice", "fn", "mockprovider")
    session.rollback()
    with pytest.raises(IntegrityError):
        _program(session, "mockuser", "fn", "mockprovider")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(db.Program)) == 1


def test_titles_that_do_not_collide(session: Session) -> None:
    directory.seed(session, SEED)
    _users(session, "alice", "bob")
    _program(session, "alice", "fn")  # custom programs of two authors
    _program(session, "bob", "fn")
    _program(session, "alice", "fn", "mockprovider")  # the author's own custom fn is another program
    directory.add_provider(session, "ibm", ["ibm-admins"])
    _program(session, "bob", "fn", "ibm")  # the same title at another provider
    session.commit()
    titles = session.execute(select(db.Program.author, db.Program.provider).where(db.Program.title == "fn"))
    assert sorted(titles, key=str) == sorted(
        [("alice", None), ("bob", None), ("alice", "mockprovider"), ("bob", "ibm")], key=str
    )


def test_created_round_trips_as_utc_with_z(store: Engine) -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    with Session(store) as session:
        _users(session, "alice")
        session.add(db.Program(id="p1", author="alice", title="dated", created=moment, updated=moment))
        session.add(db.Program(id="p2", author="alice", title="now"))
        session.commit()
    with Session(store) as session:  # a new connection: values as the database returns them
        dated = session.get(db.Program, "p1")
        now = session.get(db.Program, "p2")
        assert dated is not None and now is not None
        if store.dialect.name == "postgresql":  # timestamptz: aware, in the server's zone (not UTC here)
            assert dated.created.utcoffset() == timedelta(hours=5, minutes=30)
            assert dated.created == moment
        assert db.iso(dated.created) == "2026-03-04T05:06:07.123456Z"
        stamp = db.iso(now.created)
        assert stamp.endswith("Z") and "+" not in stamp
        assert abs(datetime.fromisoformat(stamp) - db.utcnow()) < timedelta(minutes=5)


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(hours=2), timedelta(hours=-7)])
def test_jobs_created_after_and_newest_first(session: Session, offset: timedelta) -> None:
    """The jobs listing's filter and order (`gateway.jobs.service.job_rows`), whatever the offset."""
    _users(session, "alice")
    program = _program(session, "alice", "fn")
    base = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    for index, hours in enumerate([0, 1, 1, 2, 3]):
        session.add(
            db.Job(
                id=f"00000000-0000-0000-0000-00000000000{index}",
                author="alice",
                program_id=program.id,
                flow_run_id=f"flow-{index}",
                token_hash=f"token-{index}",
                created=base + timedelta(hours=hours),
            )
        )
    session.commit()
    after = (base + timedelta(hours=1)).astimezone(timezone(offset))  # 13:00Z, written in another zone
    rows = session.execute(job_rows(session, JobQuery(created_after=after))).all()
    assert [job.id[-1] for job, _ in rows] == ["4", "3", "2", "1"]
    newest = session.scalars(select(db.Job).order_by(db.Job.created.desc(), db.Job.id.desc())).first()
    assert newest is not None and db.iso(newest.created) == "2026-05-01T15:00:00Z"


def test_nul_characters_are_refused_the_same_on_both_stores(session: Session) -> None:
    _users(session, "alice")
    session.add(db.Program(author="alice", title="fn", description="bad\x00text", entrypoint="main.py"))
    with pytest.raises(db.InvalidText):
        session.flush()
    session.rollback()
    assert session.scalar(select(func.count()).select_from(db.Program)) == 0


def test_lookups_postgres_cannot_run_are_data_errors(store: Engine, session: Session) -> None:
    """What the gateway maps to a 400 (gateway/errors.py): PostgreSQL refuses NUL even in a WHERE."""
    query = select(db.Program).where(db.Program.title == "a\x00b")
    if store.dialect.name == "postgresql":
        with pytest.raises(DataError):
            session.scalar(query)
    else:
        assert session.scalar(query) is None


def test_upgrade_adds_the_columns_an_older_store_lacks(store: Engine) -> None:
    """A store made by an older version (no `disabled` columns yet) is brought up to date at start."""
    with store.begin() as connection:
        connection.execute(text("ALTER TABLE programs DROP COLUMN disabled"))
        connection.execute(text("ALTER TABLE programs DROP COLUMN disabled_message"))
        connection.execute(
            text("INSERT INTO users (name, token_hash, created) VALUES ('old', 'digest', CURRENT_TIMESTAMP)")
        )
        connection.execute(
            text(
                "INSERT INTO programs (id, author, title, runner, dependencies, env_vars, sizes, type, "
                "created, updated) VALUES ('p-old', 'old', 'legacy', 'ray', '[]', '{}', '{}', 'GENERIC', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    db.upgrade(store)
    db.upgrade(store)  # idempotent
    with Session(store) as session:
        program = session.get(db.Program, "p-old")
        assert program is not None and program.disabled is False and program.disabled_message is None
        program.disabled = True
        session.commit()
