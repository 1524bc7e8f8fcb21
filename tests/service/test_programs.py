"""Uploading, finding and listing programs, in-process against the fake Prefect."""

from __future__ import annotations

import json

from gateway_harness import OTHER_TOKEN, Gateway

from core import layout


def test_upload_creates_the_program_and_its_deployment(gateway: Gateway) -> None:
    response = gateway.upload(description="says hello", version="1.2.3")
    assert response.status_code == 200, response.text
    program = response.json()
    assert (program["title"], program["entrypoint"], program["version"]) == ("hello", "main.py", "1.2.3")
    (deployment,) = gateway.prefect.deployments.values()
    assert (deployment.name, deployment.description, deployment.version) == ("hello (mockuser)", "says hello", "1.2.3")
    stored = gateway.storage.fs.find(gateway.storage.path(f"{layout.PROGRAMS}/{program['id']}"))
    assert len(stored) == 1, "one artifact revision is kept"


def test_reupload_updates_the_same_deployment_and_replaces_the_artifact(gateway: Gateway) -> None:
    first = gateway.upload().json()
    before = gateway.storage.fs.find(gateway.storage.path(f"{layout.PROGRAMS}/{first['id']}"))
    second = gateway.upload(files={"main.py": b"print('v2')\n"}, version="2.0.0").json()
    after = gateway.storage.fs.find(gateway.storage.path(f"{layout.PROGRAMS}/{first['id']}"))
    assert second["id"] == first["id"]
    assert len(gateway.prefect.deployments) == 1
    assert next(iter(gateway.prefect.deployments.values())).version == "2.0.0"
    assert len(after) == 1 and after != before, "the old revision is deleted once the new one is committed"


def test_bad_artifacts_are_refused_and_nothing_is_stored(gateway: Gateway) -> None:
    not_tar = gateway.call(
        "POST", "/programs/upload", data={"title": "bad", "entrypoint": "main.py"}, files={"artifact": ("a", b"x")}
    )
    assert (not_tar.status_code, not_tar.json()) == (400, {"message": "Artifact is not a valid tar archive."})
    missing = gateway.upload(files={"other.py": b""})
    assert missing.status_code == 400
    assert missing.json()["message"] == "Entrypoint 'main.py' is not a file in the artifact."
    escaping = gateway.upload(files={"../evil.py": b"", "main.py": b""})
    assert escaping.status_code == 400 and escaping.json()["message"].startswith("Unsafe artifact member")
    assert gateway.call("GET", "/programs").json() == []
    assert gateway.prefect.deployments == {}


def test_unknown_dependency_and_bad_schema_are_refused(gateway: Gateway) -> None:
    dependency = gateway.upload(dependencies=json.dumps(["numpy==2.0.0"]))
    assert dependency.status_code == 400 and dependency.json()["message"].startswith(
        "Dependency `numpy` is not allowed"
    )
    schema = gateway.upload(arguments_schema='{"type": 12}')
    assert schema.status_code == 400 and schema.json()["message"].startswith("arguments_schema cannot be used")


def test_programs_are_their_authors_alone(gateway: Gateway) -> None:
    program = gateway.upload().json()
    assert [item["id"] for item in gateway.call("GET", "/programs").json()] == [program["id"]]
    assert gateway.call("GET", "/programs", OTHER_TOKEN).json() == []
    hidden = gateway.call("GET", "/programs/get_by_title/hello", OTHER_TOKEN)
    assert (hidden.status_code, hidden.json()) == (404, {"message": "Qiskit Function hello doesn't exist."})
    # The other user's upload of the same title is their own program, not an update of this one.
    theirs = gateway.upload(token=OTHER_TOKEN).json()
    assert theirs["id"] != program["id"] and len(gateway.prefect.deployments) == 2


def test_provider_upload_needs_admin_rights(gateway: Gateway) -> None:
    assert gateway.upload(provider="mockprovider").status_code == 200
    refused = gateway.upload(provider="mockprovider", token=OTHER_TOKEN)
    assert (refused.status_code, refused.json()) == (
        404,
        {"message": "Qiskit Function mockprovider/hello doesn't exist."},
    )
    unknown = gateway.upload(provider="nobody")
    assert (unknown.status_code, unknown.json()) == (400, {"message": "nobody is not valid provider."})


def test_validate_arguments_uses_the_schema(gateway: Gateway) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    gateway.upload(arguments_schema=json.dumps(schema))
    valid = gateway.call("POST", "/programs/validate_arguments", json={"title": "hello", "arguments": '{"n": 1}'})
    assert valid.json() == {"valid": True}
    invalid = gateway.call("POST", "/programs/validate_arguments", json={"title": "hello", "arguments": '{"n": "x"}'})
    assert invalid.status_code == 400 and invalid.json()["path"] == ["n"]


def test_the_allow_list_route_reads_the_configured_file(gateway: Gateway) -> None:
    served = gateway.call("GET", "/dependencies-versions").json()
    assert "mergedeep==1.3.4" in served
    assert gateway.call("GET", "/dependencies-versions", token=None).status_code == 401
