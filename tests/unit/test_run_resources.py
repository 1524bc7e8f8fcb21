"""A run may ask for custom Ray resources the platform offers (QS_JOB_RESOURCES), and only those."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.errors import ApiError
from gateway.jobs.schemas import RunConfig
from gateway.jobs.submit import resources_of


def test_offered_resources_pass_as_asked() -> None:
    assert resources_of(RunConfig(resources={"node-2": 1}), ["node-2", "gpu"]) == {"node-2": 1.0}
    assert resources_of(None, []) == {}
    assert resources_of(RunConfig(), ["node-2"]) == {}


def test_a_resource_no_node_offers_is_refused_with_what_is_offered() -> None:
    with pytest.raises(ApiError) as refused:
        resources_of(RunConfig(resources={"CPU": 64, "node-3": 1}), ["node-2"])
    assert refused.value.status == 400
    assert refused.value.message == "Unknown Ray resources CPU, node-3: this platform offers node-2."


@pytest.mark.parametrize("amount", [0, -1, 2_000_000])
def test_amounts_are_positive_and_bounded(amount: float) -> None:
    with pytest.raises(ValidationError):
        RunConfig(resources={"node-2": amount})
