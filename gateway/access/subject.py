"""The authenticated caller as the policies see it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    job_id: str | None = None  # set when authenticated with a job's callback token
    confined: bool = False  # may only act on that job (the token of a provider program's job)

    def in_any(self, groups: frozenset[str]) -> bool:
        return not self.groups.isdisjoint(groups)
