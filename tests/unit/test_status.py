from prefect.client.schemas.objects import StateType

from core import status


def test_every_prefect_state_type_maps_to_a_gateway_status() -> None:
    expected = {
        StateType.SCHEDULED: "QUEUED",
        StateType.PAUSED: "QUEUED",
        StateType.PENDING: "PENDING",
        StateType.RUNNING: "RUNNING",
        StateType.COMPLETED: "SUCCEEDED",
        StateType.FAILED: "FAILED",
        StateType.CRASHED: "FAILED",
        StateType.CANCELLING: "STOPPING",
        StateType.CANCELLED: "STOPPED",
    }
    assert {state: status.job_status(state) for state in StateType} == expected
    assert status.job_status(None) == "QUEUED"


def test_status_filter_is_the_inverse_mapping() -> None:
    assert set(status.state_types("FAILED")) == {StateType.FAILED, StateType.CRASHED}
    assert set(status.state_types("QUEUED")) == {StateType.SCHEDULED, StateType.PAUSED}
    assert status.state_types("DONE") == []  # display names are not gateway statuses
    for gateway_status in status.ACTIVE | status.TERMINAL:
        assert all(status.job_status(state) == gateway_status for state in status.state_types(gateway_status))
