import io
import tarfile
from pathlib import Path

import pytest

from core.artifact import ArtifactError, extract_artifact, normalize_entrypoint, validate_artifact


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
