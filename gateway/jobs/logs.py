"""Who sees which log lines (docs/architecture.md, Logs). Pure functions over the stored text."""

from __future__ import annotations

from core.job_log import PRIVATE, PUBLIC


def _strip(line: str, prefix: str) -> str:
    rest = line[len(prefix) :]
    return rest[1:] if rest.startswith(" ") else rest


def _join(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n") if text else []


def user_logs(text: str, provider_job: bool) -> str:
    """A user job shows every line with the prefixes removed; a provider job only its [PUBLIC] lines."""
    kept: list[str] = []
    for line in _lines(text):
        lowered = line.lower()
        if lowered.startswith(PUBLIC):
            kept.append(_strip(line, PUBLIC))
        elif provider_job:
            continue
        elif lowered.startswith(PRIVATE):
            kept.append(_strip(line, PRIVATE))
        else:
            kept.append(line)
    return _join(kept)


def provider_logs(text: str) -> str:
    """Everything but [PUBLIC] lines, [PRIVATE] prefixes removed."""
    kept: list[str] = []
    for line in _lines(text):
        lowered = line.lower()
        if lowered.startswith(PUBLIC):
            continue
        kept.append(_strip(line, PRIVATE) if lowered.startswith(PRIVATE) else line)
    return _join(kept)
