"""A program's schedules through /api/v1, in-process against the fake Prefect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway_harness import OTHER_TOKEN, Gateway

from gateway.orchestrator import Schedule
from gateway.programs.schedules import next_runs


def schedules_path(gateway: Gateway) -> str:
    program = gateway.upload().json()
    return f"/programs/{program['id']}/schedules"


def test_an_interval_schedule_is_made_listed_paused_and_removed(gateway: Gateway) -> None:
    path = schedules_path(gateway)
    made = gateway.call("POST", path, json={"interval_seconds": 600, "arguments": '{"n": 1}'})
    assert made.status_code == 201, made.text
    body = made.json()
    fields = (body["interval_seconds"], body["timezone"], body["arguments"], body["active"])
    assert fields == (600, "UTC", '{"n": 1}', True)
    assert "cron" not in body
    first, second = (datetime.fromisoformat(moment) for moment in body["next_runs"][:2])
    assert second - first == timedelta(seconds=600)
    assert gateway.call("GET", path).json() == [body]

    paused = gateway.call("PATCH", f"{path}/{body['id']}", json={"active": False})
    assert paused.status_code == 200 and paused.json()["active"] is False and paused.json()["next_runs"] == []
    assert gateway.call("DELETE", f"{path}/{body['id']}").status_code == 204
    assert gateway.call("GET", path).json() == []
    gone = gateway.call("DELETE", f"{path}/{body['id']}")
    assert gone.status_code == 404 and gone.json() == {"message": f"Schedule {body['id']} doesn't exist."}


def test_a_cron_schedule_runs_in_its_timezone(gateway: Gateway) -> None:
    made = gateway.call("POST", schedules_path(gateway), json={"cron": "30 9 * * *", "timezone": "Europe/Paris"})
    assert made.status_code == 201, made.text
    assert made.json()["cron"] == "30 9 * * *" and made.json()["timezone"] == "Europe/Paris"
    for moment in made.json()["next_runs"]:
        local = datetime.fromisoformat(moment).astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (9, 30)


def test_bad_schedules_are_refused_with_a_message(gateway: Gateway) -> None:
    path = schedules_path(gateway)
    cases = [
        ({"cron": "every monday"}, "Invalid cron expression: every monday."),
        ({"cron": "61 * * * *"}, "Invalid cron expression: 61 * * * *."),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "Unknown timezone: Mars/Olympus."),
        ({"interval_seconds": 5}, "'interval_seconds' must be at least 10."),
        ({}, "Give either 'cron' or 'interval_seconds'."),
        ({"cron": "* * * * *", "interval_seconds": 60}, "Give either 'cron' or 'interval_seconds'."),
        ({"interval_seconds": 60, "arguments": "[1]"}, "'arguments' must be a JSON object."),
    ]
    for body, message in cases:
        refused = gateway.call("POST", path, json=body)
        assert (refused.status_code, refused.json()) == (400, {"message": message}), body
    assert gateway.call("GET", path).json() == []


def test_only_the_author_sees_or_changes_schedules(gateway: Gateway) -> None:
    path = schedules_path(gateway)
    made = gateway.call("POST", path, json={"interval_seconds": 60}).json()
    program_id = path.split("/")[2]
    missing = {"message": f"Qiskit Function [{program_id}] doesn't exist."}
    for method, where, body in [
        ("GET", path, None),
        ("POST", path, {"interval_seconds": 60}),
        ("PATCH", f"{path}/{made['id']}", {"active": False}),
        ("DELETE", f"{path}/{made['id']}", None),
    ]:
        answer = gateway.call(method, where, OTHER_TOKEN, json=body)
        assert (answer.status_code, answer.json()) == (404, missing), (method, where)
    assert gateway.call("GET", path).json() == [made], "nothing changed"


def test_a_reupload_keeps_the_schedules(gateway: Gateway) -> None:
    path = schedules_path(gateway)
    made = gateway.call("POST", path, json={"interval_seconds": 60}).json()
    assert gateway.upload().status_code == 200
    assert gateway.call("GET", path).json() == [made]


def test_next_runs_of_an_interval_count_from_its_anchor() -> None:
    anchor = datetime(2026, 1, 1, tzinfo=UTC)
    schedule = Schedule("s", None, 3600, "UTC", anchor, {}, True)
    after = datetime(2026, 1, 1, 5, 30, tzinfo=UTC)
    assert next_runs(schedule, 2, after) == [anchor + timedelta(hours=6), anchor + timedelta(hours=7)]
