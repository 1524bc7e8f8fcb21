"""Providers over HTTP with the real client: provider upload, catalog vs serverless listing,
view vs run grants, provider jobs and logs, provider file areas, disabled functions and the
active-job limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import MAX_ACTIVE_JOBS, PROGRAMS, TERMINAL, Stack, upload, wait_for
from qiskit_serverless import QiskitFunction, ServerlessClient
from qiskit_serverless.exception import QiskitServerlessException
from stack_process import add_user, manage

TITLE = "provider-fn"
FUNCTION = f"mockprovider/{TITLE}"


@pytest.fixture(scope="module")
def provider_fn(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> QiskitFunction:
    """mockuser (in mockgroup, admin of mockprovider) publishes a function; groups get grants."""
    admin = stack.client()
    function = admin.upload(
        QiskitFunction(
            title=TITLE, provider="mockprovider", entrypoint="main.py", working_dir=str(PROGRAMS / "provider")
        )
    )
    assert function is not None and function.provider == "mockprovider"
    for name, group in (("viewer", "viewers"), ("runner", "runners"), ("trialist", "trialists")):
        add_user(stack.data_dir, name, f"{name}_token")
        manage(stack.data_dir, "groups", "add", group, "--member", name)
    manage(stack.data_dir, "programs", "grant", FUNCTION, "--group", "viewers")
    manage(stack.data_dir, "programs", "grant", FUNCTION, "--group", "runners", "--run")
    manage(stack.data_dir, "programs", "grant", FUNCTION, "--group", "trialists", "--run", "--trial")
    model = tmp_path_factory.mktemp("model") / "model.json"
    model.write_text('{"weights": [1, 2]}')
    admin.provider_file_upload(str(model), function)
    return function


def titles(client: ServerlessClient, **query: str) -> set[str]:
    return {f"{fn.provider}/{fn.title}" if fn.provider else fn.title for fn in client.functions(**query)}


def test_only_provider_admins_upload_to_a_provider(stack: Stack) -> None:
    other = stack.client("other_token")
    stolen = QiskitFunction(
        title=TITLE, provider="mockprovider", entrypoint="main.py", working_dir=str(PROGRAMS / "hello")
    )
    with pytest.raises(QiskitServerlessException, match=f"Qiskit Function {FUNCTION} doesn't exist."):
        other.upload(stolen)
    unknown = QiskitFunction(
        title="x", provider="nosuchprovider", entrypoint="main.py", working_dir=str(PROGRAMS / "hello")
    )
    with pytest.raises(QiskitServerlessException, match="nosuchprovider is not valid provider."):
        stack.client().upload(unknown)
    image = QiskitFunction(title="custom-image", image="docker.io/me/runner:1")
    with pytest.raises(QiskitServerlessException, match="Custom images are only available if you are a provider."):
        other.upload(image)


def test_image_functions_are_stored_and_listed_but_not_run(stack: Stack, provider_fn: QiskitFunction) -> None:
    admin = stack.client()
    image = admin.upload(QiskitFunction(title="image-fn", provider="mockprovider", image="docker.io/mock/runner:1"))
    assert image is not None
    fetched = admin.function("mockprovider/image-fn")
    assert fetched is not None and fetched.image == "docker.io/mock/runner:1"
    assert "mockprovider/image-fn" in titles(admin)
    run = stack.post("/api/v1/programs/run/", json={"title": "image-fn", "provider": "mockprovider", "arguments": "{}"})
    assert run.status_code == 400 and "image" in run.json()["message"]


def test_catalog_and_serverless_listing_follow_grants(stack: Stack, provider_fn: QiskitFunction) -> None:
    upload(stack.client("viewer_token"), "viewer-own", "hello")
    viewer, runner, other = (stack.client(f"{name}_token") for name in ("viewer", "runner", "other"))
    assert FUNCTION in titles(viewer) and "viewer-own" in titles(viewer)
    assert FUNCTION not in titles(viewer, filter="catalog")
    assert titles(viewer, filter="serverless") == {"viewer-own"}
    assert FUNCTION in titles(runner, filter="catalog")
    assert titles(runner, filter="catalog", provider="mockprovider") >= {FUNCTION}
    assert titles(runner, provider="someoneelse") == set()
    assert FUNCTION not in titles(other) and FUNCTION not in titles(other, filter="catalog")

    assert viewer.function(FUNCTION) is not None
    with pytest.raises(QiskitServerlessException, match=f"Qiskit Function {FUNCTION} doesn't exist."):
        other.function(FUNCTION)


def test_view_grant_does_not_run(stack: Stack, provider_fn: QiskitFunction) -> None:
    response = stack.post(
        "/api/v1/programs/run/",
        token="viewer_token",
        json={"title": TITLE, "provider": "mockprovider", "arguments": "{}"},
    )
    assert response.status_code == 404
    assert response.json() == {"message": f"Qiskit Function {FUNCTION} doesn't exist."}


def test_provider_run_with_areas_logs_and_provider_jobs(
    stack: Stack, provider_fn: QiskitFunction, tmp_path: Path
) -> None:
    runner = stack.client("runner_token")
    # The title given as one "provider/title" string is split by the gateway.
    job = runner.run(FUNCTION, arguments={"name": "runner"})
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    result = job.result()
    assert {key: result[key] for key in ("trial", "model", "name", "callback")} == {
        "trial": "False",
        "model": '{"weights": [1, 2]}',
        "name": "runner",
        "callback": True,
    }
    # Its callback token knows nothing of the runner but this job.
    assert result["sees_functions"] == [] and result["sees_jobs"] == [job.job_id]

    # Users see only [PUBLIC] lines; provider admins see everything else.
    user_logs = job.logs()
    assert "public hello runner" in user_logs
    assert "private detail" not in user_logs and "third-party" not in user_logs
    admin = stack.client()
    assert "private detail for the provider" in admin.job(job.job_id).provider_logs()
    assert "unprefixed third-party output" in admin.job(job.job_id).provider_logs()
    denied = stack.get(f"/api/v1/jobs/{job.job_id}/provider-logs/", token="runner_token")
    assert denied.status_code == 403 and denied.json() == {"message": f"You don't have access to job [{job.job_id}]"}

    # Admins read the job and list it among the provider's jobs; result, logs, events and stop stay the author's.
    assert stack.get(f"/api/v1/jobs/{job.job_id}/").json()["id"] == job.job_id
    assert job.job_id in [listed.job_id for listed in admin.provider_jobs(provider_fn, limit=0)]
    for path in (f"/api/v1/jobs/{job.job_id}/result/", f"/api/v1/jobs/{job.job_id}/events/"):
        assert stack.get(path).status_code == 404, path
    assert stack.get(f"/api/v1/jobs/{job.job_id}/logs/").status_code == 403
    assert stack.post(f"/api/v1/jobs/{job.job_id}/stop/", json={"service": "null"}).status_code == 404
    assert stack.get(f"/api/v1/jobs/{job.job_id}/", params={"with_result": "true"}).json()["result"] is None

    # Non-admins cannot list provider jobs; the provider parameter is required.
    hidden = stack.get("/api/v1/jobs/provider/", token="runner_token", params={"provider": "mockprovider"})
    assert hidden.status_code == 404 and hidden.json() == {"message": "Provider mockprovider doesn't exist."}
    assert stack.get("/api/v1/jobs/provider/").json() == {"message": "'provider' not provided or is not valid"}

    # The job wrote into the runner's own area of this function; the runner and only the runner sees it.
    assert "mine.txt" in runner.files(provider_fn)
    assert "mine.txt" not in admin.files(provider_fn)
    downloaded = runner.file_download("mine.txt", provider_fn, download_location=str(tmp_path))
    assert (tmp_path / str(downloaded)).read_text() == "written for runner"


def test_trial_grant_marks_the_run(stack: Stack, provider_fn: QiskitFunction) -> None:
    job = stack.client("trialist_token").run(FUNCTION, arguments={"name": "trial"})
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    assert job.result()["trial"] == "True"
    assert stack.get(f"/api/v1/jobs/{job.job_id}/", token="trialist_token").json()["business_model"] == "TRIAL"


def test_provider_area_is_for_admins_only(stack: Stack, provider_fn: QiskitFunction, tmp_path: Path) -> None:
    admin = stack.client()
    assert "model.json" in admin.provider_files(provider_fn)
    downloaded = admin.provider_file_download("model.json", provider_fn, download_location=str(tmp_path))
    assert (tmp_path / str(downloaded)).read_text() == '{"weights": [1, 2]}'
    query = {"function": TITLE, "provider": "mockprovider"}
    for token in ("runner_token", "other_token"):
        listed = stack.get("/api/v1/files/provider", token=token, params=query)
        assert listed.status_code == 404 and listed.json() == {"message": "Provider mockprovider doesn't exist."}
        put = stack.post("/api/v1/files/provider/upload/", token=token, params=query, files={"file": ("x.txt", b"x")})
        assert put.status_code == 404
    note = tmp_path / "note.txt"
    note.write_text("scratch")
    admin.provider_file_upload(str(note), provider_fn)
    assert "note.txt" in admin.provider_files(provider_fn)
    assert admin.provider_file_delete("note.txt", provider_fn) == "Requested file was deleted."
    assert "note.txt" not in admin.provider_files(provider_fn)


def test_disabled_function_is_visible_but_refuses_runs(stack: Stack, provider_fn: QiskitFunction) -> None:
    manage(stack.data_dir, "programs", "disable", FUNCTION, "--message", "Down for maintenance.")
    try:
        runner = stack.client("runner_token")
        assert FUNCTION in titles(runner, filter="catalog")
        refused = stack.post("/api/v1/programs/run/", token="runner_token", json={"title": FUNCTION, "arguments": "{}"})
        assert refused.status_code == 423 and refused.json() == {"message": "Down for maintenance."}
    finally:
        manage(stack.data_dir, "programs", "enable", FUNCTION)


def test_active_job_limit(stack: Stack) -> None:
    add_user(stack.data_dir, "busy", "busy_token")
    client = stack.client("busy_token")
    function = upload(client, "busy-wait", "idle")
    jobs = [function.run() for _ in range(MAX_ACTIVE_JOBS)]
    try:
        with pytest.raises(
            QiskitServerlessException, match=f"Active job limit reached. The maximum allowed is {MAX_ACTIVE_JOBS}."
        ):
            function.run()
        refused = stack.post(
            "/api/v1/programs/run/", token="busy_token", json={"title": "busy-wait", "arguments": "{}"}
        )
        assert refused.status_code == 429
    finally:
        for job in jobs:
            job.stop()
    assert all(wait_for(job, TERMINAL) == "CANCELED" for job in jobs)
    again = function.run()  # accepted again once the others ended
    assert again.job_id and again.stop()
