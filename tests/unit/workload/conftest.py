"""Fixtures for the workload library tests."""

from __future__ import annotations

import json
import pathlib
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from tests.unit.workload import support

SERVER_SCRIPT = pathlib.Path(__file__).with_name("mtls_server.py")


@pytest.fixture
def pki() -> support.Pki:
    return support.Pki()


@pytest.fixture
def other_pki() -> support.Pki:
    return support.Pki("someone-elses-root")


class ServerProcess:
    """`mtls_server.py` running in its own process."""

    def __init__(self, directory: pathlib.Path, policy: Sequence[dict[str, Any]]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), str(directory), json.dumps(list(policy))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        first = self.events.get(timeout=30)
        self.port: int = first["port"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def next_event(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(directory: pathlib.Path, policy: Sequence[dict[str, Any]]) -> ServerProcess:
        server = ServerProcess(directory, policy)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
