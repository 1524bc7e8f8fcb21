"""`POST /programs/run` with an `Idempotency-Key`: one job per key and user within 24 hours."""

from __future__ import annotations

from datetime import timedelta

from gateway_harness import OTHER_TOKEN, TOKEN, Gateway
from sqlalchemy import func, select, update

from gateway import db
from gateway.jobs import idempotency


def run(gateway: Gateway, key: str, token: str = TOKEN, arguments: str = '{"n": 1}') -> dict[str, object]:
    body = {"title": "hello", "arguments": arguments}
    response = gateway.call("POST", "/programs/run", token, json=body, headers={"Idempotency-Key": key})
    return {**response.json(), "http": response.status_code}


def jobs(gateway: Gateway) -> int:
    with gateway.database.session() as session:
        return session.scalar(select(func.count()).select_from(db.Job)) or 0


def test_a_repeated_key_gets_the_first_job_and_makes_no_other(gateway: Gateway) -> None:
    assert gateway.upload().status_code == 200
    first = run(gateway, "order-1")
    again = run(gateway, "order-1")
    assert first["http"] == again["http"] == 200
    assert again["id"] == first["id"] and again["arguments"] == '{"n": 1}'
    assert jobs(gateway) == 1
    assert run(gateway, "order-2")["id"] != first["id"], "another key, another job"
    assert jobs(gateway) == 2


def test_keys_are_per_user(gateway: Gateway) -> None:
    assert gateway.upload().status_code == 200
    assert gateway.upload(token=OTHER_TOKEN).status_code == 200
    mine, theirs = run(gateway, "shared-key"), run(gateway, "shared-key", token=OTHER_TOKEN)
    assert mine["http"] == theirs["http"] == 200 and mine["id"] != theirs["id"]
    assert run(gateway, "shared-key")["id"] == mine["id"]
    assert jobs(gateway) == 2


def test_a_key_used_for_another_request_is_refused(gateway: Gateway) -> None:
    assert gateway.upload().status_code == 200
    run(gateway, "order-3")
    reused = run(gateway, "order-3", arguments='{"n": 2}')
    assert reused == {"http": 409, "message": idempotency.REUSED}
    assert jobs(gateway) == 1


def test_a_key_older_than_a_day_makes_a_new_job(gateway: Gateway) -> None:
    assert gateway.upload().status_code == 200
    first = run(gateway, "order-4")
    with gateway.database.session() as session:
        session.execute(update(db.Submission).values(created=db.utcnow() - timedelta(hours=25)))
        session.commit()
    assert run(gateway, "order-4")["id"] != first["id"]
    with gateway.database.session() as session:
        session.execute(update(db.Submission).values(created=db.utcnow() - timedelta(hours=25)))
        assert idempotency.forget_expired(session) == 1
        session.commit()


def test_a_race_lost_at_commit_answers_with_the_winners_job(gateway: Gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two gateways took the same key at once: the one whose commit fails answers with the other's job."""
    assert gateway.upload().status_code == 200
    winner = run(gateway, "order-5")
    misses = iter([None])  # the loser looked before the winner committed
    real = idempotency.earlier_job

    def late_look(session, claim, arguments):  # type: ignore[no-untyped-def]
        return next(misses, "look") and real(session, claim, arguments)

    monkeypatch.setattr("gateway.jobs.submit.earlier_job", late_look)
    loser = run(gateway, "order-5")
    assert loser["http"] == 200 and loser["id"] == winner["id"]
    assert jobs(gateway) == 1
    assert len(gateway.storage.fs.ls(gateway.storage.path("jobs"))) == 1, "the loser's files are gone"
    assert len(gateway.storage.fs.ls(gateway.storage.path("users/mockuser/arguments"))) == 1
