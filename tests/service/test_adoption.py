"""Runs started in Prefect (UI, CLI, schedules) become jobs, in-process against the fake Prefect."""

from __future__ import annotations

import json

from gateway_harness import Gateway

from core.job_spec import TOKEN_VARIABLE, JobSpec
from core.tags import job_tags
from gateway.context import Services
from gateway.jobs.adoption import adopt_runs


def services_of(gateway: Gateway) -> Services:
    return gateway.http.app.state.services  # type: ignore[no-any-return]


def deployment_of(gateway: Gateway, title: str = "hello") -> str:
    found = [d.id for d in gateway.prefect.deployments.values() if d.name.startswith(f"{title} (")]
    assert len(found) == 1
    return found[0]


def test_a_run_started_in_prefect_becomes_a_job_of_the_author(gateway: Gateway) -> None:
    program = gateway.upload().json()
    run_id = gateway.prefect.start_in_prefect(deployment_of(gateway), {"n": 3})

    assert adopt_runs(services_of(gateway)) == [run_id]
    job = gateway.job(run_id)
    assert (job["id"], job["status"], job["program"]["id"]) == (run_id, "QUEUED", program["id"])
    spec = JobSpec.load(gateway.storage, run_id)
    assert json.loads(gateway.storage.get_bytes(spec.arguments_key) or b"") == {"n": 3}
    assert gateway.storage.get_bytes(spec.artifact_key), "its own artifact snapshot"
    assert spec.env[TOKEN_VARIABLE] and spec.env["ENV_JOB_ID_GATEWAY"] == run_id
    assert set(job_tags("mockuser", "hello", None)) <= set(gateway.prefect.runs[run_id].tags), "counted as the user's"
    assert adopt_runs(services_of(gateway)) == [], "a run is a job once"


def test_a_run_without_arguments_gets_an_empty_object(gateway: Gateway) -> None:
    gateway.upload()
    run_id = gateway.prefect.start_in_prefect(deployment_of(gateway), None)
    assert adopt_runs(services_of(gateway)) == [run_id]
    spec = JobSpec.load(gateway.storage, run_id)
    assert gateway.storage.get_bytes(spec.arguments_key) == b"{}"


def test_a_run_the_gateway_made_is_its_jobs_never_a_new_job(gateway: Gateway) -> None:
    gateway.upload()
    made = gateway.run().json()["id"]
    assert adopt_runs(services_of(gateway)) == [], "its job's run (tagged with the job)"
    assert len(gateway.prefect.runs) == 1
    # A run tagged with a user but no job (made by some other client of Prefect): that user's job.
    tagged = gateway.prefect.start_in_prefect(deployment_of(gateway), {}, job_tags("otheruser", "hello", None))
    assert adopt_runs(services_of(gateway)) == [tagged]
    assert gateway.call("GET", f"/jobs/{tagged}").status_code == 404, "not mockuser's"
    assert made != tagged


def test_runs_of_deployments_that_are_no_program_here_are_not_adopted(gateway: Gateway) -> None:
    gateway.upload()
    gateway.prefect.deployments["elsewhere"] = gateway.prefect.deployments[deployment_of(gateway)]
    stranger = gateway.prefect.start_in_prefect("elsewhere", {})
    assert adopt_runs(services_of(gateway)) == []
    assert gateway.call("GET", f"/jobs/{stranger}").status_code == 404


def test_the_deployment_takes_the_programs_arguments_schema(gateway: Gateway) -> None:
    schema = {"type": "object", "properties": {"n": {"$ref": "#/$defs/count"}}, "$defs": {"count": {"type": "integer"}}}
    assert gateway.upload(arguments_schema=json.dumps(schema)).status_code == 200
    parameters = gateway.prefect.deployments[deployment_of(gateway)].parameter_schema
    assert list(parameters["properties"]) == ["arguments"]
    assert parameters["properties"]["arguments"]["properties"] == {"n": {"$ref": "#/$defs/count"}}
    assert parameters["$defs"] == {"count": {"type": "integer"}}, "definitions where the $refs point"
