"""A cross-tenant matrix over HTTP: user B against every route with user A's program, job and
file → 404 (403 on the two log routes, as the reference gateway answers); afterwards nothing of A's has changed."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import PROGRAMS, TERMINAL, Stack, upload, wait_for
from qiskit_serverless import QiskitFunction

TITLE = "tenant-a-fn"
B = "other_token"


@pytest.fixture(scope="module")
def owned(stack: Stack) -> dict[str, Any]:
    client = stack.client()
    function = upload(client, TITLE, "hello")
    job = function.run(name="tenant a")
    assert wait_for(job, TERMINAL) == "DONE"
    put = stack.post("/api/v1/files/upload/", params={"function": TITLE}, files={"file": ("a.txt", b"A's data")})
    assert put.status_code == 200
    program_id = stack.get(f"/api/v1/programs/get_by_title/{TITLE}").json()["id"]
    return {"function": function, "job": job, "program_id": program_id}


def matrix(job_id: str, program_id: str) -> list[tuple[str, str, dict[str, Any], int, str | None]]:
    """(method, path, request kwargs, expected status, expected message or None)."""
    job_missing = f"Job [{job_id}] not found"
    fn_missing = f"Qiskit Function {TITLE} doesn't exist."
    jobs = f"/api/v1/jobs/{job_id}"
    file_query = {"function": TITLE, "file": "a.txt"}
    provider_query = {"function": TITLE, "provider": "mockprovider", "file": "a.txt"}
    provider_missing = "Provider mockprovider doesn't exist."
    return [
        ("GET", f"/api/v1/programs/get_by_title/{TITLE}", {}, 404, fn_missing),
        ("POST", "/api/v1/programs/run/", {"json": {"title": TITLE, "arguments": "{}"}}, 404, fn_missing),
        (
            "POST",
            "/api/v1/programs/validate_arguments/",
            {"json": {"title": TITLE, "arguments": "{}"}},
            404,
            fn_missing,
        ),
        ("GET", f"/api/v1/programs/{program_id}/get_jobs/", {}, 404, None),
        ("GET", f"{jobs}/", {}, 404, job_missing),
        ("GET", f"{jobs}/", {"params": {"with_result": "true"}}, 404, job_missing),
        ("GET", f"{jobs}/result/", {}, 404, job_missing),
        ("POST", f"{jobs}/result/", {"data": {"result": '{"forged": true}'}}, 404, job_missing),
        ("GET", f"{jobs}/logs/", {}, 403, f"You don't have access to read user logs of the job [{job_id}]"),
        ("GET", f"{jobs}/provider-logs/", {}, 403, f"You don't have access to job [{job_id}]"),
        ("POST", f"{jobs}/stop/", {"json": {"service": "null"}}, 404, job_missing),
        ("GET", f"{jobs}/events/", {}, 404, job_missing),
        ("POST", f"{jobs}/event/", {"json": {"type": "ERROR", "code": 1, "message": "x", "exception": "E"}}, 404, None),
        ("PATCH", f"{jobs}/sub_status/", {"data": {"sub_status": "MAPPING"}}, 404, job_missing),
        ("GET", f"{jobs}/runtime_jobs/", {}, 404, job_missing),
        ("POST", f"{jobs}/runtime_jobs/", {"json": {"runtime_job": "rt-1", "runtime_session": None}}, 404, job_missing),
        ("GET", "/api/v1/jobs/provider/", {"params": {"provider": "mockprovider"}}, 404, provider_missing),
        ("GET", "/api/v1/files", {"params": {"function": TITLE}}, 404, fn_missing),
        ("GET", "/api/v1/files/download", {"params": file_query}, 404, fn_missing),
        ("DELETE", "/api/v1/files/delete", {"params": file_query}, 404, fn_missing),
        (
            "POST",
            "/api/v1/files/upload/",
            {"params": {"function": TITLE}, "files": {"file": ("a.txt", b"B")}},
            404,
            None,
        ),
        ("GET", "/api/v1/files/provider", {"params": provider_query}, 404, provider_missing),
        ("GET", "/api/v1/files/provider/download", {"params": provider_query}, 404, provider_missing),
        ("DELETE", "/api/v1/files/provider/delete", {"params": provider_query}, 404, provider_missing),
    ]


def test_user_b_is_refused_everywhere_and_a_is_untouched(stack: Stack, owned: dict[str, Any]) -> None:
    job = owned["job"]
    for method, path, kwargs, expected, message in matrix(job.job_id, owned["program_id"]):
        response = stack.request(method, path, token=B, **kwargs)
        assert response.status_code == expected, (method, path, response.status_code, response.text)
        body = response.json()
        assert set(body) == {"message"}, (method, path, body)
        if message is not None:
            assert body["message"] == message, (method, path, body)

    other = stack.client(B)
    assert all(function.title != TITLE for function in other.functions())
    assert job.job_id not in [listed.job_id for listed in other.jobs(limit=0)]
    assert stack.get("/api/v1/jobs/", token=B, params={"function": TITLE}).status_code == 200  # B's own list, empty

    # Nothing of A's changed: job, result, events, sub-status, runtime jobs, files.
    assert job.status() == "DONE" and job.result() == {"hello": "tenant a"}
    assert job.logs() == stack.get(f"/api/v1/jobs/{job.job_id}/logs/").json()["logs"]
    assert all(
        event["event_type"] == "STATUS_CHANGE" for event in stack.get(f"/api/v1/jobs/{job.job_id}/events/").json()
    )
    assert stack.get(f"/api/v1/jobs/{job.job_id}/runtime_jobs/").json() == {"runtime_jobs": []}
    assert stack.get(f"/api/v1/jobs/{job.job_id}/").json()["sub_status"] is None
    download = stack.get("/api/v1/files/download", params={"function": TITLE, "file": "a.txt"})
    assert download.status_code == 200 and download.content == b"A's data"


def test_same_title_for_b_is_b_own_function(stack: Stack, owned: dict[str, Any]) -> None:
    """B may use the same title: it is B's own program, and A's is unchanged."""
    other = stack.client(B)
    mine = other.upload(QiskitFunction(title=TITLE, entrypoint="main.py", working_dir=str(PROGRAMS / "hello")))
    assert mine is not None
    job = mine.run(name="tenant b")
    assert wait_for(job, TERMINAL) == "DONE" and job.result() == {"hello": "tenant b"}
    assert "a.txt" not in other.files(mine)
    a_view = stack.get(f"/api/v1/programs/get_by_title/{TITLE}").json()
    assert a_view["id"] == owned["program_id"]
    assert owned["job"].result() == {"hello": "tenant a"}
