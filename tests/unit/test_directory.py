"""The directory (users, groups, providers, grants) and the dev seed file, on a scratch SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gateway import db, directory
from gateway.access import programs as policy
from gateway.access.facts import admin_groups, program_facts, user_groups
from gateway.access.subject import Principal

SEED = Path(__file__).resolve().parents[2] / "deployments" / "dev-seed.toml"


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    db.Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


def test_dev_seed_reproduces_reference_setup(session: Session) -> None:
    directory.seed(session, SEED)
    directory.seed(session, SEED)  # idempotent
    user = session.get(db.User, "mockuser")
    assert user is not None and user.token_hash == directory.hash_token("awesome_token")
    assert "awesome_token" not in user.token_hash
    assert user_groups(session, "mockuser") == {"mockgroup"}
    assert admin_groups(session, "mockprovider") == {"mockgroup"}


def test_grants_drive_the_program_policy(session: Session) -> None:
    directory.seed(session, SEED)
    directory.add_user(session, "viewer1", "viewer-token")
    directory.add_member(session, "viewers", "viewer1")
    session.add(db.Program(author="mockuser", title="fn", provider="mockprovider", entrypoint="main.py"))
    session.flush()
    viewer = Principal("viewer1", user_groups(session, "viewer1"))
    program = session.scalars(select(db.Program)).one()
    assert not policy.can_view(viewer, program_facts(session, program))

    directory.grant(session, "mockprovider", "fn", "viewers", "view")
    facts = program_facts(session, program)
    assert policy.can_view(viewer, facts) and not policy.can_run(viewer, facts)

    directory.grant(session, "mockprovider", "fn", "viewers", "run", trial=True)
    facts = program_facts(session, program)
    assert policy.can_run(viewer, facts) and policy.runs_as_trial(viewer, facts)


def test_disable_and_enable(session: Session) -> None:
    directory.seed(session, SEED)
    session.add(db.Program(author="mockuser", title="fn", provider="mockprovider", entrypoint="main.py"))
    directory.set_disabled(session, "mockprovider", "fn", True, "Maintenance until Monday.")
    program = directory.provider_program(session, "mockprovider", "fn")
    assert program.disabled and program.disabled_message == "Maintenance until Monday."
    directory.set_disabled(session, "mockprovider", "fn", False)
    assert not program.disabled and program.disabled_message is None


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a b", "x" * 151, "ümlaut"])
def test_unsafe_names_are_refused(session: Session, name: str) -> None:
    with pytest.raises(directory.DirectoryError):
        directory.add_user(session, name, "long-enough-token")
    with pytest.raises(directory.DirectoryError):
        directory.add_provider(session, name, ["admins"])


def test_unknown_program_and_permission(session: Session) -> None:
    directory.seed(session, SEED)
    with pytest.raises(directory.DirectoryError, match="no program"):
        directory.grant(session, "mockprovider", "missing", "g", "run")
    with pytest.raises(directory.DirectoryError, match="permission"):
        directory.grant(session, "mockprovider", "missing", "g", "admin")


def test_seed_keeps_a_token_rotated_since(session: Session) -> None:
    directory.seed(session, SEED)
    directory.add_user(session, "mockuser", "rotated-token")
    directory.seed(session, SEED)  # a restart re-applies the seed
    user = session.get(db.User, "mockuser")
    assert user is not None and user.token_hash == directory.hash_token("rotated-token")
