import io
import tarfile
from pathlib import Path

import pytest

from core.artifact import (
    ALWAYS_EXPANDS_TO,
    MAX_ENTRIES,
    MAX_EXPANSION,
    MAX_NAME_BYTES,
    ArtifactError,
    extract_artifact,
    normalize_entrypoint,
    validate_artifact,
)


def make_tar(entries: list[tarfile.TarInfo], contents: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info in entries:
            data = (contents or {}).get(info.name, b"")
            info.size = len(data) if info.isfile() else 0
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    "entry",
    [
        member("../outside.py"),
        member("/etc/cron.d/evil"),
        member("link", tarfile.SYMTYPE, "/etc/passwd"),
        member("link", tarfile.SYMTYPE, "../../outside"),
        member("hard", tarfile.LNKTYPE, "/etc/passwd"),
        member("dev", tarfile.CHRTYPE),
    ],
)
def test_unsafe_members_are_refused(entry: tarfile.TarInfo, tmp_path: Path) -> None:
    data = make_tar([member("main.py"), entry], {"main.py": b"print(1)"})
    with pytest.raises(ArtifactError):
        validate_artifact(io.BytesIO(data), "main.py")
    (tmp_path / "a.tar").write_bytes(data)
    with pytest.raises((ArtifactError, tarfile.TarError)):
        extract_artifact(tmp_path / "a.tar", tmp_path / "out")
    assert not (tmp_path / "outside.py").exists()


def test_good_artifact_extracts_with_subpackages(tmp_path: Path) -> None:
    data = make_tar([member("main.py"), member("pkg/mod.py")], {"main.py": b"import pkg.mod", "pkg/mod.py": b"X = 1"})
    validate_artifact(io.BytesIO(data), "pkg/mod.py")
    (tmp_path / "a.tar").write_bytes(data)
    extract_artifact(tmp_path / "a.tar", tmp_path / "out")
    assert (tmp_path / "out" / "pkg" / "mod.py").read_bytes() == b"X = 1"


def test_missing_entrypoint_and_garbage_are_refused() -> None:
    data = make_tar([member("other.py")], {"other.py": b""})
    with pytest.raises(ArtifactError, match="not a file in the artifact"):
        validate_artifact(io.BytesIO(data), "main.py")
    with pytest.raises(ArtifactError, match="not a valid tar"):
        validate_artifact(io.BytesIO(b"garbage" * 100), "main.py")


@pytest.mark.parametrize("good,normal", [("main.py", "main.py"), ("./src/run.py", "src/run.py"), ("a/../b.py", "b.py")])
def test_entrypoints_are_normalised(good: str, normal: str) -> None:
    assert normalize_entrypoint(good) == normal


@pytest.mark.parametrize("bad", ["/main.py", "../main.py", "main.sh", "a b.py", "x/../../y.py", ""])
def test_bad_entrypoints_are_refused(bad: str) -> None:
    with pytest.raises(ArtifactError):
        normalize_entrypoint(bad)


def compressed(files: dict[str, bytes], mode: str = "w:gz", empty_entries: int = 0) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for index in range(empty_entries):
            archive.addfile(tarfile.TarInfo(f"e/{index}"), io.BytesIO(b""))
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_compressed_artifacts_of_every_documented_format_are_accepted(mode: str) -> None:
    source = b"".join(f"print({index})\n".encode() for index in range(20_000))  # 250 KB of code
    validate_artifact(io.BytesIO(compressed({"main.py": source}, mode)), "main.py")


def test_an_archive_of_too_many_entries_is_refused_while_read() -> None:
    bomb = compressed({"main.py": b"print(1)"}, empty_entries=MAX_ENTRIES)
    assert len(bomb) < 200_000, "small on the wire"
    with pytest.raises(ArtifactError, match=f"more than {MAX_ENTRIES} entries"):
        validate_artifact(io.BytesIO(bomb), "main.py")


def test_an_archive_that_expands_far_past_its_size_is_refused() -> None:
    zeros = compressed({"main.py": b"print(1)", "data.bin": b"\0" * (ALWAYS_EXPANDS_TO + 1)})
    assert len(zeros) * MAX_EXPANSION < ALWAYS_EXPANDS_TO
    with pytest.raises(ArtifactError, match="expands past"):
        validate_artifact(io.BytesIO(zeros), "main.py")
    fine = compressed({"main.py": b"print(1)", "data.bin": b"\0" * (ALWAYS_EXPANDS_TO - 16)})
    validate_artifact(io.BytesIO(fine), "main.py")


def test_a_member_name_past_the_limit_is_refused() -> None:
    long_name = "d/" * (MAX_NAME_BYTES // 2) + "x.py"
    with pytest.raises(ArtifactError, match="name longer than"):
        validate_artifact(io.BytesIO(compressed({"main.py": b"1", long_name: b"1"}, "w")), "main.py")


def test_a_huge_pax_header_is_refused_before_it_is_read_whole() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("main.py")
        info.pax_headers = {"comment": "x" * (64 * 1024 * 1024)}  # tarfile would read it whole
        archive.addfile(info, io.BytesIO(b""))
    assert len(buffer.getvalue()) < 1_000_000, "small on the wire"
    with pytest.raises(ArtifactError, match="expands past"):
        validate_artifact(io.BytesIO(buffer.getvalue()), "main.py")
