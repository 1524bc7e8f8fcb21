"""Program dependencies: the allow-list endpoint, upload validation, and a job importing an installed package."""

from __future__ import annotations

import json

import pytest
from conftest import PROGRAMS, TERMINAL, Stack, wait_for
from packaging.requirements import Requirement
from qiskit_serverless import QiskitFunction, ServerlessClient
from qiskit_serverless.exception import QiskitServerlessException


def upload_with(client: ServerlessClient, title: str, dependencies: list[object]) -> QiskitFunction:
    function = client.upload(
        QiskitFunction(title=title, entrypoint="main.py", working_dir=str(PROGRAMS / "deps"), dependencies=dependencies)
    )
    assert function is not None
    return function


def stored(function: QiskitFunction) -> list[str]:
    dependencies = function.dependencies
    return json.loads(dependencies) if isinstance(dependencies, str) else list(dependencies or [])


def test_dependencies_versions_is_the_allow_list(stack: Stack, client: ServerlessClient) -> None:
    versions = client.dependencies_versions()
    assert "mergedeep==1.3.4" in versions
    assert all(isinstance(entry, str) for entry in versions)
    for path in ("/api/v1/dependencies-versions/", "/api/v1/dependencies-versions"):
        response = stack.get(path, allow_redirects=False)  # no Service-Channel header, like the client
        assert response.status_code == 200, response.text
        assert response.json() == versions
    assert stack.get("/api/v1/dependencies-versions/", token=None).status_code == 401


def test_job_imports_its_pinned_dependency(client: ServerlessClient) -> None:
    function = upload_with(client, "deps-pinned", ["mergedeep==1.3.4"])
    assert stored(function) == ["mergedeep==1.3.4"]

    job = function.run()
    assert wait_for(job, TERMINAL, timeout=300) == "DONE", job.logs()
    result = job.result()
    assert result["mergedeep"]["version"] == "1.3.4"
    assert "/envs/" in result["mergedeep"]["file"]  # the job's installed packages, not the runtime's own
    assert result["merged"] == {"a": {"b": 1, "c": 2}}
    logs = job.logs()
    assert "dependencies: mergedeep==1.3.4" in logs  # "Installing …" the first time, "Using installed …" after
    assert "imported mergedeep 1.3.4" in logs

    again = function.run()
    assert wait_for(again, TERMINAL, timeout=120) == "DONE", again.logs()
    assert again.result()["mergedeep"]["file"] == result["mergedeep"]["file"]
    assert "Using installed dependencies: mergedeep==1.3.4" in again.logs()


def test_bare_name_and_dict_forms(client: ServerlessClient) -> None:
    assert stored(upload_with(client, "deps-dict", [{"mergedeep": "1.3.4"}])) == ["mergedeep==1.3.4"]
    assert stored(upload_with(client, "deps-bare", ["mergedeep"])) == ["mergedeep==1.3.4"]
    ranged = [entry for entry in client.dependencies_versions() if "<" in entry or ">" in entry]
    if not ranged:
        pytest.skip("the allow-list has no range entry")
    name = Requirement(ranged[0]).name
    function = upload_with(client, "deps-range", [name])
    assert stored(function) == [name]  # a range in the allow-list: the job installs the best match in it
    module = name.replace("-", "_")
    job = function.run(imports={module: name})
    assert wait_for(job, TERMINAL, timeout=300) == "DONE", job.logs()
    assert "/envs/" in job.result()[module]["file"]


def test_refused_dependencies(client: ServerlessClient) -> None:
    with pytest.raises(QiskitServerlessException) as raised:
        upload_with(client, "deps-refused", ["notallowed==1.0"])
    assert "Dependency `notallowed` is not allowed. Allowed dependencies: " in str(raised.value)
    assert "mergedeep==1.3.4" in str(raised.value)

    with pytest.raises(QiskitServerlessException) as raised:
        upload_with(client, "deps-refused", ["mergedeep>=1.0"])
    assert "'dependencies' needs one fixed version using the '==' operator." in str(raised.value)

    with pytest.raises(QiskitServerlessException) as raised:
        upload_with(client, "deps-refused", ["mergedeep==1.3.3"])
    assert "Dependency (mergedeep) version (1.3.3) is not allowed. Allowed: mergedeep==1.3.4" in str(raised.value)
