"""Fixtures for the PKI core tests (helpers live in support.py)."""

from __future__ import annotations

import shutil

import pytest

from .support import ALGORITHMS, NOW, Pki

_PKI = Pki(NOW)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return _PKI


@pytest.fixture(params=list(ALGORITHMS), ids=[f"with {name} keys" for name in ALGORITHMS])
def algorithm(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def openssl() -> str:
    path = shutil.which("openssl")
    assert path is not None, (
        "the real-peer tests need the openssl command (apt-get install openssl)"
    )
    return path
