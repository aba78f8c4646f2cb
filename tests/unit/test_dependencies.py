"""The dependency lock: what `make venv` installs satisfies pyproject.toml, pinned and hashed."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "lock.txt"
RUNTIME = REPO / "requirements" / "runtime.txt"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def pins(path: Path) -> dict[str, str]:
    """Package name to pinned version; each pin must carry at least one hash."""
    text = path.read_text()
    entries = re.findall(
        r"^([A-Za-z0-9._-]+)==([^\s;]+)"  # name==version
        r"(?: ;[^\\\n]*[^\\\n ])?"  # an environment marker
        r"((?: \\\n\s+--hash=sha256:[0-9a-f]{64})*)",  # the hashes
        text,
        re.MULTILINE,
    )
    unhashed = [name for name, _, hashes in entries if not hashes]
    assert not unhashed, f"{path.name}: pins without hashes: {unhashed}"
    requirement_lines = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(requirement_lines) == len(entries), f"{path.name} has lines that are not exact pins"
    return {canonicalize_name(name): version for name, version, _ in entries}


def declared(extras: tuple[str, ...]) -> list[Requirement]:
    lines = list(PYPROJECT["dependencies"])
    for extra in extras:
        lines += PYPROJECT["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(
    ("lock", "extras"),
    [(LOCK, ("test", "bench")), (RUNTIME, ())],
    ids=["the development lock", "the runtime lock"],
)
def test_every_declared_dependency_is_pinned_within_its_range(
    lock: Path, extras: tuple[str, ...]
) -> None:
    pinned = pins(lock)
    for requirement in declared(extras):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} is not in {lock.name}"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock.name} pins {name}=={pinned[name]}, outside {requirement}"
        )


def test_the_runtime_lock_agrees_with_the_development_lock() -> None:
    development, runtime = pins(LOCK), pins(RUNTIME)
    assert {name: development.get(name) for name in runtime} == runtime


def test_the_development_lock_holds_the_tools_the_makefile_needs() -> None:
    assert {"setuptools", "uv"} <= set(pins(LOCK))


def test_no_package_index_address_is_written_into_the_locks() -> None:
    for lock in (LOCK, RUNTIME):
        assert not re.search(
            r"https?://|--index-url|--extra-index-url|--find-links", lock.read_text()
        )
