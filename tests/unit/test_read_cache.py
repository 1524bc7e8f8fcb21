"""The gateway's short-lived read copies: age, size, and forgetting a job (with its token)."""

from __future__ import annotations

from gateway.access.jobs import JobFacts
from gateway.access.subject import Principal
from gateway.jobs.schemas import JobOut, ProgramRef
from gateway.read_cache import ReadCache, TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_expires_after_its_age() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl=1.0, clock=clock)
    cache.put("a", 1)
    clock.now = 0.99
    assert cache.get("a") == 1
    clock.now = 1.0
    assert cache.get("a") is None
    assert cache.entries == {}, "an expired entry is gone, not kept"


def test_the_least_recently_used_entry_goes_first_past_the_size() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60, size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_forgetting_a_job_drops_its_copy_and_its_tokens_caller() -> None:
    reads = ReadCache()
    program = ProgramRef(id="p", title="t", provider=None)
    job = JobOut(id="j", status="RUNNING", program=program, created="2026-01-01T00:00:00Z", sub_status=None)
    reads.jobs.put("j", (JobFacts(id="j", author="u"), job))
    reads.remember_principal("job-digest", Principal("u", job_id="j"))
    reads.remember_principal("user-digest", Principal("u"))
    reads.forget_job(None, "j")
    assert reads.jobs.get("j") is None
    assert reads.principals.get("job-digest") is None, "a job's token ends with its job"
    assert reads.principals.get("user-digest") == Principal("u"), "the user's own token is not the job's"
