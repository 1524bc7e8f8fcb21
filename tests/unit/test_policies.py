"""Truth tables of the access policies: every subject against every rule, for custom and
provider resources. A row lists what the subject may do; everything else must be refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.access import files, jobs, programs
from gateway.access.jobs import JobFacts
from gateway.access.programs import ProgramFacts
from gateway.access.subject import Principal

ADMINS = frozenset({"prov-admins"})
SUBJECTS: dict[str, Principal | None] = {
    "author": Principal("alice", frozenset({"staff"})),
    "other": Principal("bob", frozenset({"staff"})),
    "admin": Principal("carol", ADMINS),
    "viewer": Principal("dave", frozenset({"viewers"})),
    "runner": Principal("erin", frozenset({"runners"})),
    "trialist": Principal("frank", frozenset({"trialists"})),
    "anonymous": None,
    # The callback token of alice's job of the provider program: someone else's code, confined.
    "provider job token": Principal("alice", job_id="provider-job", confined=True),
}
CUSTOM = ProgramFacts(author="alice")
PROVIDED = ProgramFacts(
    author="alice",
    provider="prov",
    admin_groups=ADMINS,
    view_groups=frozenset({"viewers", "runners", "trialists"}),
    run_groups=frozenset({"runners", "trialists"}),
    trial_groups=frozenset({"trialists"}),
)
CUSTOM_JOB = JobFacts(id="custom-job", author="alice")
PROVIDER_JOB = JobFacts(id="provider-job", author="alice", provider="prov", admin_groups=ADMINS)

Rule = Callable[[Principal | None], bool]
RULES: dict[str, Rule] = {
    "view custom": lambda s: programs.can_view(s, CUSTOM),
    "run custom": lambda s: programs.can_run(s, CUSTOM),
    "view provider program": lambda s: programs.can_view(s, PROVIDED),
    "run provider program": lambda s: programs.can_run(s, PROVIDED),
    "upload to provider": lambda s: programs.can_upload(s, ADMINS),
    "read custom job": lambda s: jobs.can_read(s, CUSTOM_JOB),
    "author-only on custom job": lambda s: jobs.is_author(s, CUSTOM_JOB),
    "provider logs of custom job": lambda s: jobs.can_read_provider_logs(s, CUSTOM_JOB),
    "read provider job": lambda s: jobs.can_read(s, PROVIDER_JOB),
    "author-only on provider job": lambda s: jobs.is_author(s, PROVIDER_JOB),
    "provider logs of provider job": lambda s: jobs.can_read_provider_logs(s, PROVIDER_JOB),
    "list provider jobs": lambda s: jobs.can_list_provider_jobs(s, ADMINS),
    "user area of custom": lambda s: files.can_use_user_area(s, CUSTOM),
    "user area of provider program": lambda s: files.can_use_user_area(s, PROVIDED),
    "provider area": lambda s: files.can_use_provider_area(s, ADMINS),
}
ALLOWED: dict[str, set[str]] = {
    "author": {
        "view custom",
        "run custom",
        "view provider program",
        "run provider program",
        "read custom job",
        "author-only on custom job",
        "read provider job",
        "author-only on provider job",
        "user area of custom",
        "user area of provider program",
    },
    "other": set(),
    "admin": {
        "view provider program",
        "run provider program",
        "upload to provider",
        "read provider job",
        "provider logs of provider job",
        "list provider jobs",
        "user area of provider program",
        "provider area",
    },
    "viewer": {"view provider program", "user area of provider program"},
    "runner": {"view provider program", "run provider program", "user area of provider program"},
    "trialist": {"view provider program", "run provider program", "user area of provider program"},
    "anonymous": set(),
    "provider job token": {"read provider job", "author-only on provider job"},
}


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("rule", RULES)
def test_truth_table(subject: str, rule: str) -> None:
    assert RULES[rule](SUBJECTS[subject]) is (rule in ALLOWED[subject])


@pytest.mark.parametrize(
    ("subject", "trial"),
    [("author", False), ("admin", False), ("runner", False), ("trialist", True), ("viewer", False)],
)
def test_trial_runs(subject: str, trial: bool) -> None:
    principal = SUBJECTS[subject]
    assert principal is not None
    assert programs.runs_as_trial(principal, PROVIDED) is trial
    assert programs.runs_as_trial(principal, CUSTOM) is False


def test_full_grant_beats_trial_grant() -> None:
    both = Principal("gina", frozenset({"runners", "trialists"}))
    assert programs.runs_as_trial(both, PROVIDED) is False


def test_confined_token_uploads_nothing() -> None:
    token = SUBJECTS["provider job token"]
    assert not programs.can_upload(token, None) and not programs.can_upload(token, ADMINS)
    assert programs.can_upload(SUBJECTS["other"], None)  # anyone keeps custom programs


def test_admins_of_another_provider_get_nothing() -> None:
    stranger = Principal("hank", frozenset({"other-admins"}))
    assert not programs.can_view(stranger, PROVIDED)
    assert not jobs.can_read(stranger, PROVIDER_JOB)
    assert not files.can_use_provider_area(stranger, ADMINS)
