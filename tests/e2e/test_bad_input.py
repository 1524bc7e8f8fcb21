"""Bad input gets a 4xx {"message"} and harms nothing already stored."""

from __future__ import annotations

from archives import tar_of
from conftest import TERMINAL, Stack, upload, wait_for
from qiskit_serverless import ServerlessClient


def post_upload(stack: Stack, artifact: bytes | None, **fields: str):  # type: ignore[no-untyped-def]
    data = {"title": "victim", "entrypoint": "main.py", "dependencies": "[]", "env_vars": "{}", **fields}
    files = {"artifact": ("artifact.tar", artifact)} if artifact is not None else None
    return stack.post("/api/v1/programs/upload/", data=data, files=files)


def assert_message(response, status: int) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("message"), str) and body["message"]
    assert "Traceback" not in body["message"]


def test_rejected_uploads_leave_the_stored_program_working(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "victim", "hello")
    cases = [
        (b"this is not a tar", {}),
        (tar_of({"other.py": b"print(1)"}), {}),
        (tar_of({"../escape.py": b"x", "main.py": b"x"}), {}),
        (tar_of({"/abs.py": b"x", "main.py": b"x"}), {}),
        (tar_of({"main.py": b"x"}, symlink=("link", "/etc/passwd")), {}),
        (tar_of({"main.py": b"x"}), {"entrypoint": "../main.py"}),
        (tar_of({"main.py": b"x"}), {"entrypoint": "/main.py"}),
        (tar_of({"main.py": b"x"}), {"entrypoint": "main.sh"}),
        (tar_of({"main.py": b"x"}), {"dependencies": "not json"}),
        (tar_of({"main.py": b"x"}), {"env_vars": "[1, 2]"}),
        (tar_of({"main.py": b"x"}), {"version": "not-a-version"}),
        (tar_of({"main.py": b"x"}), {"arguments_schema": '{"type": 12}'}),
    ]
    for artifact, fields in cases:
        assert_message(post_upload(stack, artifact, **fields), 400)
    assert_message(stack.post("/api/v1/programs/upload/", data={"entrypoint": "main.py"}), 400)
    assert_message(post_upload(stack, None, title="brand-new"), 400)
    assert_message(post_upload(stack, tar_of({"main.py": b"x"}), image="docker.io/x:1"), 400)

    job = client.function("victim").run(name="still fine")
    assert wait_for(job, TERMINAL) == "DONE"
    assert job.result() == {"hello": "still fine"}
    assert not (stack.data_dir / "storage" / "escape.py").exists()


def test_auth_errors(stack: Stack) -> None:
    assert_message(stack.get("/api/v1/programs/", token=None), 401)
    assert_message(stack.get("/api/v1/programs/", token="wrong"), 401)
    assert_message(stack.get("/api/v1/programs/", headers={"Service-Channel": "bogus"}), 401)
    assert stack.get("/liveness/", token=None).json() == {"status": "alive"}
    for path in ("/liveness", "/api/v1/liveness", "/api/v1/liveness/", "/readiness", "/api/v1/version/"):
        response = stack.get(path, token=None, allow_redirects=False)
        assert response.status_code == 200, path


def test_bad_requests_are_clear_4xx(stack: Stack) -> None:
    assert_message(stack.get("/api/v1/jobs/not-a-uuid/"), 404)
    assert_message(stack.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000/result/"), 404)
    assert_message(stack.get("/api/v1/programs/get_by_title/nothing-here"), 404)
    assert stack.get("/api/v1/programs/get_by_title/wrong-title").json() == {
        "message": "Qiskit Function wrong-title doesn't exist."
    }
    assert_message(stack.post("/api/v1/programs/run/", json={"title": "victim", "arguments": "not json"}), 400)
    assert_message(stack.post("/api/v1/programs/run/", json={"arguments": "{}"}), 400)
    assert_message(
        stack.post("/api/v1/programs/run/", data=b"{broken", headers={"Content-Type": "application/json"}), 400
    )
    config = {"workers": 99}
    assert_message(
        stack.post("/api/v1/programs/run/", json={"title": "victim", "arguments": "{}", "config": config}), 400
    )
    huge = "x" * (61 * 1024 * 1024)
    assert_message(stack.post("/api/v1/programs/run/", data=huge, headers={"Content-Type": "application/json"}), 413)
    big_arguments = '{"a": "' + "x" * (1024 * 1024) + '"}'
    assert_message(stack.post("/api/v1/programs/run/", json={"title": "victim", "arguments": big_arguments}), 413)
    assert_message(stack.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000/events/", params={"type": "BAD"}), 404)
    assert_message(stack.get("/api/v1/no-such-route/"), 404)


def test_chunked_body_past_the_limit_is_413(stack: Stack) -> None:
    import requests

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(70):  # 70 MiB, past the 60 MiB request limit, without a Content-Length
            yield b"x" * (1024 * 1024)

    response = requests.post(
        f"{stack.url}/api/v1/programs/run/",
        headers={"Authorization": "Bearer awesome_token", "Content-Type": "application/json"},
        data=chunks(),
        timeout=120,
    )
    assert_message(response, 413)


def test_deep_json_and_bad_schema_refs_are_400(stack: Stack, client: ServerlessClient) -> None:
    upload(client, "deep", "hello")
    deep = "[" * 100_000 + "]" * 100_000
    assert_message(stack.post("/api/v1/programs/run/", json={"title": "deep", "arguments": deep}), 400)
    bad_ref = post_upload(stack, tar_of({"main.py": b"x"}), title="deep", arguments_schema='{"$ref": "#/nope"}')
    assert_message(bad_ref, 400)
    import gzip
    import os

    compressed = gzip.compress(tar_of({"main.py": b"# " + os.urandom(20_000).hex().encode()}))
    assert_message(post_upload(stack, compressed[: len(compressed) // 2], title="deep"), 400)
