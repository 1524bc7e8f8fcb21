"""File areas through the real client, once on local storage and once on s3:// (moto's S3 server)."""

from __future__ import annotations

from pathlib import Path

from conftest import MAX_FILE_BYTES, PROGRAMS, TERMINAL, Stack, upload, wait_for, wait_for_log
from qiskit_serverless import QiskitFunction

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


def test_round_trip_upload_list_download_delete(any_stack: Stack, tmp_path: Path) -> None:
    client = any_stack.client()
    function = upload(client, "files-owner", "hello")
    source = tmp_path / "numbers.csv"
    source.write_bytes(b"a,b\n" + b"1,2\n" * 50_000)

    client.file_upload(str(source), function)
    assert "numbers.csv" in client.files(function)
    (tmp_path / "down").mkdir()
    target = client.file_download("numbers.csv", function, download_location=str(tmp_path / "down"))
    assert target is not None
    assert (tmp_path / "down" / target).read_bytes() == source.read_bytes()

    source.write_bytes(b"replaced\n")
    client.file_upload(str(source), function)
    again = client.file_download("numbers.csv", function, target_name="again.csv", download_location=str(tmp_path))
    assert (tmp_path / str(again)).read_bytes() == b"replaced\n"

    assert client.file_delete("numbers.csv", function) == "Requested file was deleted."
    assert "numbers.csv" not in client.files(function)
    missing = any_stack.request(
        "DELETE", "/api/v1/files/delete", params={"file": "numbers.csv", "function": "files-owner"}
    )
    assert missing.status_code == 404 and missing.json() == {"message": "Requested file was not found."}


def test_provider_function_areas(any_stack: Stack, tmp_path: Path) -> None:
    """A provider function's per-user area and its shared provider area, through the client and a job."""
    admin = any_stack.client()  # mockuser administers mockprovider (the dev seed)
    function = admin.upload(
        QiskitFunction(
            title="area-fn", provider="mockprovider", entrypoint="main.py", working_dir=str(PROGRAMS / "provider")
        )
    )
    assert function is not None
    model = tmp_path / "model.json"
    model.write_text('{"weights": [3]}')
    admin.provider_file_upload(str(model), function)
    assert admin.provider_files(function) == ["model.json"]
    (tmp_path / "down").mkdir()
    fetched = admin.provider_file_download("model.json", function, download_location=str(tmp_path / "down"))
    assert (tmp_path / "down" / str(fetched)).read_text() == '{"weights": [3]}'

    note = tmp_path / "note.txt"
    note.write_text("the admin's own note")
    admin.file_upload(str(note), function)
    assert admin.files(function) == ["note.txt"]  # its own area: not the provider's, not the user's custom one
    custom = upload(admin, "area-custom", "hello")
    assert "note.txt" not in admin.files(custom)

    job = admin.run("mockprovider/area-fn", arguments={"name": "admin"})
    assert wait_for(job, TERMINAL) == "DONE", job.logs()
    result = job.result()
    assert result["model"] == '{"weights": [3]}'
    # The provider code's token is confined to its job: none of mockuser's many functions or jobs.
    assert result["sees_functions"] == [] and result["sees_jobs"] == [job.job_id]
    assert set(admin.files(function)) == {"note.txt", "mine.txt"}  # what the job wrote to DATA_PATH
    assert set(admin.provider_files(function)) == {"model.json", "last-run.txt"}  # and to FUNCTION_DATA_PATH
    last = admin.provider_file_download("last-run.txt", function, download_location=str(tmp_path / "down"))
    assert (tmp_path / "down" / str(last)).read_text() == "last run by admin"

    for name in ("model.json", "last-run.txt"):
        assert admin.provider_file_delete(name, function) == "Requested file was deleted."
    assert admin.file_delete("note.txt", function) == "Requested file was deleted."
    assert admin.provider_files(function) == [] and admin.files(function) == ["mine.txt"]


def test_a_stopped_job_keeps_what_it_wrote(any_stack: Stack, tmp_path: Path) -> None:
    """On object storage the data area is a scratch copy: a stop must still push it back."""
    client = any_stack.client()
    function = upload(client, "interrupted", "interrupted")
    job = function.run()
    wait_for_log(job, "file written")
    job.stop()
    assert wait_for(job, TERMINAL) == "CANCELED"
    assert "partial.txt" in client.files(function)
    saved = client.file_download("partial.txt", function, download_location=str(tmp_path))
    assert (tmp_path / str(saved)).read_text() == "written before the stop"
    assert job.logs().endswith("file written, waiting\n")


def test_producer_and_consumer_share_the_user_area(any_stack: Stack, tmp_path: Path) -> None:
    client = any_stack.client()
    producer = upload(client, "producer", "producer")
    consumer = upload(client, "consumer", "consumer")
    note = tmp_path / "uploaded.txt"
    note.write_text("from the client")
    client.file_upload(str(note), consumer)

    first = producer.run(payload="made by the producer")
    assert wait_for(first, TERMINAL) == "DONE", first.logs()
    assert "x.tar" in client.files(consumer)
    second = consumer.run()
    assert wait_for(second, TERMINAL) == "DONE", second.logs()
    assert second.result() == {"payload": "made by the producer", "uploaded": "from the client"}


def test_bad_files_are_refused_and_nothing_escapes(any_stack: Stack) -> None:
    client = any_stack.client()
    upload(client, "files-guard", "hello")
    params = {"function": "files-guard"}

    png = any_stack.post("/api/v1/files/upload/", params=params, files={"file": ("image.json", PNG)})
    assert png.status_code == 400 and png.json() == {"message": "Uploaded file is not a valid type."}
    missing = any_stack.post("/api/v1/files/upload/", params=params)
    assert missing.status_code == 400 and missing.json() == {"message": "A file should be uploaded."}

    for name in ("../escape.txt", "/etc/escape.txt", "..%2Fescape.txt", "sub/../../escape.txt", "nul\x00escape.txt"):
        response = any_stack.post("/api/v1/files/upload/", params=params, files={"file": (name, b"text\n")})
        assert response.status_code == 200, response.text
        assert "/" not in response.json()["message"]
    listed = client.files(client.function("files-guard"))
    assert all("/" not in name and name.strip(".") for name in listed)
    for name in ("..", "../..", "/", ""):
        response = any_stack.get("/api/v1/files/download", params={**params, "file": name})
        assert response.status_code in (400, 404), name
    secret = any_stack.get("/api/v1/files/download", params={**params, "file": "../../../gateway.db"})
    assert secret.status_code == 404
    written = [path for path in any_stack.data_dir.rglob("*escape.txt")]
    assert all(path.parent == any_stack.user_area() for path in written), written

    unknown = any_stack.get("/api/v1/files", params={"function": "no-such-function"})
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Qiskit Function no-such-function doesn't exist."}
    provider = any_stack.get("/api/v1/files/provider", params={"function": "x", "provider": "nobody"})
    assert provider.status_code == 404 and provider.json() == {"message": "Provider nobody doesn't exist."}


def test_other_users_never_see_my_files(any_stack: Stack, tmp_path: Path) -> None:
    client = any_stack.client()
    function = upload(client, "files-private", "hello")
    secret = tmp_path / "secret.txt"
    secret.write_text("mine")
    client.file_upload(str(secret), function)
    params = {"function": "files-private"}
    for method, path, extra in (
        ("GET", "/api/v1/files", {}),
        ("GET", "/api/v1/files/download", {"file": "secret.txt"}),
        ("DELETE", "/api/v1/files/delete", {"file": "secret.txt"}),
    ):
        response = any_stack.request(method, path, token="other_token", params={**params, **extra})
        assert response.status_code == 404, (path, response.text)
    upload_attempt = any_stack.post(
        "/api/v1/files/upload/", token="other_token", params=params, files={"file": ("secret.txt", b"theirs\n")}
    )
    assert upload_attempt.status_code == 404
    assert "secret.txt" in client.files(function)
    (tmp_path / "d").mkdir()
    name = client.file_download("secret.txt", function, download_location=str(tmp_path / "d"))
    assert (tmp_path / "d" / str(name)).read_text() == "mine"


def test_oversize_upload_is_413_and_stores_nothing(any_stack: Stack) -> None:
    upload(any_stack.client(), "files-guard", "hello")
    params = {"function": "files-guard"}
    big = b"0123456789abcdef\n" * (MAX_FILE_BYTES // 17 + 1000)
    response = any_stack.post("/api/v1/files/upload/", params=params, files={"file": ("big.txt", big)})
    assert response.status_code == 413 and "message" in response.json()
    assert "big.txt" not in any_stack.get("/api/v1/files", params=params).json()["results"]


def test_a_late_stop_keeps_every_file_and_the_kill_waits_for_the_copy_back(s3_stack: Stack) -> None:
    """The stop lands as the program ends or while its 800 files are copied back to S3, which takes
    longer than the stack's 2 s stop grace: the force-kill waits, and nothing written is lost."""
    client = s3_stack.client("many_files_token")
    function = upload(client, "many-files", "many_files")
    job = function.run()
    wait_for_log(job, "files written")
    job.stop()
    assert wait_for(job, TERMINAL) in {"CANCELED", "DONE"}
    files = [name for name in client.files(function) if name.startswith("many-")]
    assert len(files) == 800
