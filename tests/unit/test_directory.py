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


def job_of(session: Session, author: str, status: str) -> db.Job:
    program = session.scalar(select(db.Program).where(db.Program.author == author))
    if program is None:
        program = db.Program(author=author, title=f"p-{author}")
        session.add(program)
        session.flush()
    job = db.Job(author=author, program_id=program.id, token_hash=db.new_id(), status=status)
    job.flow_run_id = job.id = db.new_id()
    session.add(job)
    session.flush()
    return job


def test_rotating_or_revoking_a_users_token_ends_their_active_jobs_tokens(session: Session) -> None:
    directory.add_user(session, "alice", "first-token")
    directory.add_user(session, "bob", "bobs-token")
    running, done = job_of(session, "alice", "RUNNING"), job_of(session, "alice", "SUCCEEDED")
    others = job_of(session, "bob", "QUEUED")
    before = {job.id: job.token_hash for job in (running, done, others)}
    directory.add_user(session, "alice", "first-token")  # the same token: nothing rotates
    session.refresh(running)
    assert running.token_hash == before[running.id]
    directory.add_user(session, "alice", "second-token")
    for job in (running, done, others):
        session.refresh(job)
    assert running.token_hash != before[running.id], "the running job's token no longer matches"
    assert (done.token_hash, others.token_hash) == (before[done.id], before[others.id])
    queued = job_of(session, "alice", "QUEUED")
    directory.revoke_user(session, "alice")
    session.refresh(queued)
    user = session.get(db.User, "alice")
    assert user is not None and user.token_hash != directory.hash_token("second-token")
    assert queued.token_hash.startswith("revoked:")


def test_removing_a_user_keeps_what_names_them(session: Session) -> None:
    directory.add_user(session, "alice", "alice-token")
    directory.add_user(session, "carol", "carol-token")
    directory.add_member(session, "team", "alice")
    directory.add_member(session, "team", "carol")
    job_of(session, "alice", "SUCCEEDED")
    assert "kept, as the author of 1 programs and 1 jobs" in directory.remove_user(session, "alice")
    assert session.get(db.User, "alice") is not None and user_groups(session, "alice") == frozenset()
    assert directory.remove_user(session, "carol") == "user carol removed"
    assert session.get(db.User, "carol") is None
    with pytest.raises(directory.DirectoryError, match="no user"):
        directory.remove_user(session, "nobody")


def test_groups_admins_and_grants_can_be_taken_away(session: Session) -> None:
    directory.seed(session, SEED)
    directory.add_user(session, "viewer1", "viewer-token")
    directory.add_member(session, "viewers", "viewer1")
    session.add(db.Program(author="mockuser", title="solver", provider="mockprovider"))
    session.flush()
    directory.grant(session, "mockprovider", "solver", "viewers", "run")
    directory.add_provider(session, "mockprovider", ["viewers"])
    listing = directory.who_has_what(session)
    assert "  viewer1: viewers" in listing and "  mockprovider/solver: viewers may run" in listing
    assert "  mockprovider: administered by mockgroup, viewers" in listing

    directory.remove_admin(session, "mockprovider", "viewers")
    assert admin_groups(session, "mockprovider") == {"mockgroup"}
    directory.revoke_grant(session, "mockprovider", "solver", "viewers")
    assert "may run" not in directory.who_has_what(session)
    directory.remove_member(session, "viewers", "viewer1")
    assert user_groups(session, "viewer1") == frozenset()
    directory.grant(session, "mockprovider", "solver", "viewers", "view")
    directory.remove_group(session, "viewers")
    assert session.get(db.Group, "viewers") is None and "viewers" not in directory.who_has_what(session)
    for undo in (
        lambda: directory.remove_member(session, "mockgroup", "viewer1"),
        lambda: directory.remove_admin(session, "mockprovider", "nobody"),
        lambda: directory.revoke_grant(session, "mockprovider", "solver", "viewers"),
        lambda: directory.remove_group(session, "viewers"),
    ):
        with pytest.raises(directory.DirectoryError):
            undo()
