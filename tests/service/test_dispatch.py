"""Admission and dispatch: a run request records the job; the dispatcher makes its flow run once,
in order, within the window; the store's statuses follow the runs. In-process, fake Prefect."""

from __future__ import annotations

import pytest
from gateway_harness import OTHER_TOKEN, Gateway
from prefect.client.schemas.objects import StateType

from core.job_spec import JobSpec
from gateway import db
from gateway.context import Services
from gateway.jobs.adoption import adopt_runs
from gateway.jobs.dispatch import MAX_ATTEMPTS, dispatch_jobs
from gateway.jobs.status_feed import reconcile
from gateway.orchestrator import Retries, RunState


def services_of(gateway: Gateway) -> Services:
    return gateway.http.app.state.services  # type: ignore[no-any-return]


@pytest.fixture
def paused(gateway: Gateway) -> Services:
    """Dispatching paused (window 0): recorded jobs wait."""
    services = services_of(gateway)
    services.settings.dispatch_window = 0
    return services


def row(gateway: Gateway, job_id: str) -> db.Job:
    with gateway.database.session() as session:
        job = session.get(db.Job, job_id)
        assert job is not None
        return job


def run_made_by_a_dying_dispatcher(gateway: Gateway, job_id: str) -> str:
    """The job's run, made as the dispatcher makes it, then nothing recorded (it died)."""
    return gateway.prefect.start_run(
        job_id=job_id,
        deployment_id=next(iter(gateway.prefect.deployments)),
        arguments={},
        runner="mockuser",
        title="hello",
        provider=None,
        retries=Retries(),
    )


def test_a_run_request_records_the_job_and_answers_without_its_run(gateway: Gateway, paused: Services) -> None:
    gateway.upload()
    job_id = gateway.run(arguments='{"n": 1}').json()["id"]
    assert gateway.prefect.runs == {}, "nothing asked of Prefect"
    assert gateway.job(job_id)["status"] == "QUEUED"
    listed = gateway.call("GET", "/jobs/", params={"status": "QUEUED"}).json()
    assert [job["id"] for job in listed["results"]] == [job_id]
    assert JobSpec.load(gateway.storage, job_id).job_id == job_id, "its files are written before it is recorded"

    paused.settings.dispatch_window = 8
    assert dispatch_jobs(paused) == 1
    run = gateway.prefect.run_of(job_id)
    assert run is not None and run.parameters == {"arguments": {"n": 1}}
    assert row(gateway, job_id).run_id == run.id
    assert dispatch_jobs(paused) == 0, "dispatched once"


def test_jobs_wait_for_room_in_the_window_and_leave_in_order(gateway: Gateway, paused: Services) -> None:
    gateway.upload()
    first, second, third = (gateway.run(arguments=f'{{"i": {i}}}').json()["id"] for i in range(3))
    paused.settings.dispatch_window = 1
    assert dispatch_jobs(paused) == 1
    assert gateway.prefect.run_of(first) is not None
    assert gateway.prefect.run_of(second) is None and gateway.prefect.run_of(third) is None
    gateway.advance(first, StateType.RUNNING)
    assert dispatch_jobs(paused) == 0, "the window is full while the first runs"
    gateway.advance(first, StateType.COMPLETED)  # its end wakes the dispatcher
    assert gateway.prefect.run_of(second) is not None
    assert gateway.prefect.run_of(third) is None
    assert gateway.job(third)["status"] == "QUEUED"


def test_a_run_made_by_a_dispatcher_that_died_is_not_made_twice(gateway: Gateway, paused: Services) -> None:
    gateway.upload()
    job_id = gateway.run().json()["id"]
    # The dying dispatcher made the run; neither it nor the event stream recorded it.
    gateway.prefect.follower = lambda change: None
    made = run_made_by_a_dying_dispatcher(gateway, job_id)
    assert row(gateway, job_id).run_id is None
    paused.settings.dispatch_window = 8
    dispatch_jobs(paused)  # a restarted (or another) gateway
    assert len(gateway.prefect.runs) == 1, "the same run, found by the job's idempotency key"
    assert row(gateway, job_id).run_id == made


def test_the_event_of_a_run_links_it_to_its_job(gateway: Gateway, paused: Services) -> None:
    gateway.upload()
    job_id = gateway.run().json()["id"]
    deployment = next(iter(gateway.prefect.deployments))
    made = gateway.prefect.start_in_prefect(deployment, {}, [f"job:{job_id}"])  # its Scheduled event
    assert row(gateway, job_id).run_id == made
    gateway.prefect.advance(job_id, StateType.RUNNING)
    assert gateway.job(job_id)["status"] == "RUNNING"


def test_a_job_stopped_before_its_run_never_runs(gateway: Gateway, paused: Services) -> None:
    gateway.upload()
    job_id = gateway.run().json()["id"]
    stopped = gateway.call("POST", f"/jobs/{job_id}/stop/", json={"service": None})
    assert stopped.status_code == 200 and "Job has been stopped." in stopped.json()["message"]
    assert gateway.job(job_id)["status"] == "STOPPED"
    paused.settings.dispatch_window = 8
    assert dispatch_jobs(paused) == 0
    assert gateway.prefect.runs == {}
    events = gateway.call("GET", f"/jobs/{job_id}/events/").json()
    assert [event["data"]["status"] for event in events] == ["STOPPED", "QUEUED"]


def test_a_run_prefect_refuses_fails_the_job_with_the_reason(gateway: Gateway) -> None:
    gateway.upload()
    gateway.prefect.refusing[None] = (409, "Validation failed for field 'arguments'")
    job_id = gateway.run().json()["id"]
    assert gateway.job(job_id)["status"] == "FAILED"
    errors = gateway.call("GET", f"/jobs/{job_id}/events/", params={"type": "ERROR"}).json()
    assert "Validation failed for field 'arguments'" in errors[0]["data"]["message"]


def test_waiting_jobs_count_against_the_active_job_limit(gateway: Gateway, paused: Services) -> None:
    gateway.upload()
    limit = paused.settings.max_active_jobs
    for _ in range(limit):
        assert gateway.run().status_code == 200
    refused = gateway.run()
    assert refused.status_code == 429
    assert refused.json() == {"message": f"Active job limit reached. The maximum allowed is {limit}."}


def test_reconciliation_catches_states_the_event_stream_missed(gateway: Gateway) -> None:
    gateway.upload()
    job_id = gateway.run().json()["id"]
    gone_id = gateway.run().json()["id"]
    gateway.prefect.follower = lambda change: None  # the stream is down
    gateway.advance(job_id, StateType.RUNNING, StateType.COMPLETED)
    gone = gateway.prefect.run_of(gone_id)
    assert gone is not None
    del gateway.prefect.runs[gone.id]  # deleted in the Prefect UI
    assert gateway.job(job_id)["status"] == "QUEUED", "not seen yet"
    reconcile(services_of(gateway))
    assert gateway.job(job_id)["status"] == "SUCCEEDED"
    assert gateway.job(gone_id)["status"] == "FAILED", "nothing will ever run it"


def test_an_older_state_never_overwrites_a_newer_one(gateway: Gateway) -> None:
    gateway.upload()
    job_id = gateway.run().json()["id"]
    run = gateway.prefect.run_of(job_id)
    assert run is not None
    gateway.advance(job_id, StateType.RUNNING, StateType.COMPLETED)
    late = RunState(
        run.id, job_id, StateType.RUNNING, run.history[1].timestamp
    )  # delivered late, or by another gateway
    gateway.prefect.follower(late)
    assert gateway.job(job_id)["status"] == "SUCCEEDED"


def test_users_take_turns_for_the_window(gateway: Gateway, paused: Services) -> None:
    """One user's backlog does not hold another user's job behind it: first jobs of each user first."""
    gateway.upload()
    gateway.upload(token=OTHER_TOKEN)
    mine = [gateway.run().json()["id"] for _ in range(3)]
    theirs = gateway.run(token=OTHER_TOKEN).json()["id"]
    paused.settings.dispatch_window = 2
    dispatch_jobs(paused)
    started = {job_id for job_id in [*mine, theirs] if gateway.prefect.run_of(job_id) is not None}
    assert started == {mine[0], theirs}


def test_a_job_read_a_moment_ago_shows_each_change_at_once(gateway: Gateway) -> None:
    """Reads are served from the gateway's short-lived copy, which every change drops."""
    gateway.upload()
    job_id = gateway.run().json()["id"]
    assert gateway.job(job_id)["status"] == "QUEUED"
    assert services_of(gateway).reads.jobs.get(job_id) is not None, "kept for the next read"
    gateway.advance(job_id, StateType.RUNNING)
    assert gateway.job(job_id)["status"] == "RUNNING"
    assert gateway.call("PATCH", f"/jobs/{job_id}/sub_status/", data={"sub_status": "MAPPING"}).status_code == 200
    assert gateway.job(job_id)["sub_status"] == "MAPPING"
    assert gateway.call("GET", f"/jobs/{job_id}/", token=OTHER_TOKEN).status_code == 404, "the copy keeps the rules"
    gateway.call("POST", f"/jobs/{job_id}/stop/", json={"service": None})
    assert gateway.job(job_id)["status"] == "STOPPED"


def test_a_job_that_cannot_be_dispatched_holds_no_other_job(gateway: Gateway, paused: Services) -> None:
    gateway.upload()
    broken, busy, fine = (gateway.run().json()["id"] for _ in range(3))
    spec = JobSpec.load(gateway.storage, broken)
    gateway.storage.put_bytes(spec.arguments_key, b"{not json")  # rewritten in the user's own area
    gateway.prefect.refusing[busy] = (503, "Prefect is busy")
    paused.settings.dispatch_window = 8
    for _ in range(MAX_ATTEMPTS):
        dispatch_jobs(paused)
    assert gateway.prefect.run_of(fine) is not None, "dispatched past the two that fail"
    assert gateway.job(broken)["status"] == "FAILED"
    errors = gateway.call("GET", f"/jobs/{broken}/events/", params={"type": "ERROR"}).json()
    assert "arguments file is not JSON" in errors[0]["data"]["message"]
    assert gateway.job(busy)["status"] == "FAILED", f"failed after {MAX_ATTEMPTS} passes, not retried forever"
    assert gateway.prefect.run_of(busy) is None


def test_a_run_left_unrecorded_for_a_job_stopped_meanwhile_is_stopped(gateway: Gateway, paused: Services) -> None:
    """A dispatcher died after making the run; its event was missed; the user stopped the job."""
    gateway.upload()
    job_id = gateway.run().json()["id"]
    gateway.prefect.follower = lambda change: None
    made = run_made_by_a_dying_dispatcher(gateway, job_id)
    gateway.call("POST", f"/jobs/{job_id}/stop/", json={"service": None})
    assert gateway.job(job_id)["status"] == "STOPPED"
    assert gateway.prefect.runs[made].state.type == StateType.SCHEDULED, "nobody knew of the run yet"
    assert adopt_runs(services_of(gateway)) == [], "adoption finds it is the job's run"
    assert gateway.prefect.runs[made].state.type == StateType.CANCELLED, "and stops it"
    assert row(gateway, job_id).run_id == made and gateway.job(job_id)["status"] == "STOPPED"


def test_a_finished_job_stays_finished_when_its_run_is_scheduled_again(gateway: Gateway) -> None:
    gateway.upload()
    job_id = gateway.run().json()["id"]
    gateway.advance(job_id, StateType.RUNNING, StateType.COMPLETED, StateType.SCHEDULED)  # a Retry in the UI
    assert gateway.job(job_id)["status"] == "SUCCEEDED"
    gateway.advance(job_id, StateType.COMPLETED)
    assert gateway.job(job_id)["status"] == "SUCCEEDED"
