"""Build each interop peer once, with this machine's toolchain, cached by a hash of its sources.

A build lands in ``$CERTMINT_INTEROP_CACHE`` (default ``~/.cache/certmint/interop``) under
``<peer>-<hash>``, where the hash covers the peer's source files and the toolchain's
version: editing a peer or upgrading a compiler rebuilds it, anything else reuses it.
Dependencies come from the registries each toolchain uses, pinned by the lock file in
the peer's directory (go.sum, Cargo.lock, package-lock.json, the versions in pom.xml), and
stay in the toolchain's own download cache, so a second build needs no network.

A missing toolchain fails the test with the command it needed; it never skips.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("CERTMINT_INTEROP_CACHE", Path.home() / ".cache/certmint/interop"))
#: Directories that hold build outputs, never sources.
_NOT_SOURCES = {"target", "node_modules", "__pycache__"}
_BUILD_TIMEOUT = 900.0


def require_tool(name: str) -> str:
    """The path of a toolchain command; fails the test when the machine lacks it.

    Raises:
        pytest.fail.Exception: ``name`` is not on PATH.
    """
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"the interop suite needs {name!r} on PATH (Go 1.26, OpenJDK 17 + Maven, Node 20, "
            "Rust with cargo and OpenSSL are part of this machine kind); install it",
            pytrace=False,
        )
    return path


def _run(argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=_BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"building an interop peer failed: {' '.join(argv)} (in {cwd})\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    return result.stdout + result.stderr


def source_hash(source: Path, toolchain: str) -> str:
    """A hash of the peer's source files (names and contents) and the toolchain's version."""
    digest = hashlib.sha256(toolchain.encode())
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_file() and not _NOT_SOURCES & set(relative.parts):
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached_build(peer: str, toolchain: str, build: Callable[[Path], None]) -> Path:
    """The output directory of ``peer``'s build, building it first if it is not cached.

    Builds into a temporary directory and renames it into place, so an interrupted build
    is never taken for a finished one.

    Args:
        peer: The directory name under tests/interop.
        toolchain: The toolchain's version text (part of the cache key).
        build: Writes the build into the directory it is given.

    Returns:
        The directory holding the build.
    """
    source = HERE / peer
    final = CACHE / f"{peer}-{source_hash(source, toolchain)}"
    if (final / ".complete").exists():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{peer}-", dir=CACHE))
    try:
        build(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / ".complete").touch()
    try:
        staging.rename(final)
    except OSError:  # another run finished the same build first; use that one
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _version(argv: Sequence[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    return (result.stdout + result.stderr).strip()


def go_peer(peer: str) -> Path:
    """Build a Go peer (tests/interop/<peer>, its own module) and return the binary."""
    go = require_tool("go")

    def build(out: Path) -> None:
        _run(
            [go, "build", "-trimpath", "-o", str(out / "peer"), "."],
            HERE / peer,
            {"GOFLAGS": "-mod=readonly", "CGO_ENABLED": "0"},
        )

    return cached_build(peer, _version([go, "version"]), build) / "peer"


def rustls_peer() -> Path:
    """Build the rustls client with cargo (Cargo.lock, --locked) and return the binary."""
    cargo = require_tool("cargo")

    def build(out: Path) -> None:
        _run(
            [cargo, "build", "--release", "--locked", "--target-dir", str(out / "target")],
            HERE / "rustls",
        )
        binary = out / "target" / "release" / "certmint-rustls-peer"
        binary.rename(out / "peer")
        shutil.rmtree(out / "target")

    return cached_build("rustls", _version([cargo, "--version"]), build) / "peer"


def java_peer() -> list[str]:
    """Compile the Java peer with Maven; return the ``java`` argv that runs it."""
    mvn, java = require_tool("mvn"), require_tool("java")
    require_tool("keytool")

    def build(out: Path) -> None:
        _run(
            [
                mvn, "-B", "-q", f"-Dinterop.out={out / 'build'}", "compile",
                "dependency:build-classpath", f"-Dmdep.outputFile={out / 'classpath'}",
            ],
            HERE / "java",
        )  # fmt: skip

    out = cached_build("java", _version([java, "-version"]), build)
    classpath = f"{out / 'build' / 'classes'}{os.pathsep}{(out / 'classpath').read_text().strip()}"
    return [java, "-cp", classpath, "io.certmint.interop.Peer"]


def node_peer() -> list[str]:
    """Install the Node peer's locked dependencies (npm ci); return the ``node`` argv."""
    node, npm = require_tool("node"), require_tool("npm")

    def build(out: Path) -> None:
        app = out / "app"
        app.mkdir()
        for path in (HERE / "node").iterdir():
            if path.is_file():
                shutil.copy2(path, app / path.name)
        _run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], app)

    out = cached_build("node", _version([node, "--version"]), build)
    return [node, str(out / "app" / "peer.mjs")]
