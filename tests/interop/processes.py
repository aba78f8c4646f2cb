"""Run interop peers by their driver protocol: argv in, JSON lines out.

A server peer listens on 127.0.0.1 port 0 and prints ``{"port": N}`` first; every peer
prints its result as a JSON line, or ``{"error": ...}`` and exits non-zero. Nothing here
sleeps: reads wait on the peer's output with a deadline.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEADLINE = 60.0


def run_client(argv: Sequence[str | Path]) -> dict[str, Any]:
    """Run a peer to completion and return its last JSON line.

    Raises:
        AssertionError: The peer failed, timed out or printed no JSON; with its output.
    """
    result = subprocess.run(
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    output = f"{argv[0]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output
    assert lines, output
    decoded: dict[str, Any] = json.loads(lines[-1])
    return decoded


def run_lines(argv: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Run a peer to completion (exit status 0) and return every JSON line it printed."""
    result = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=DEADLINE, check=False
    )
    assert result.returncode == 0, f"{argv[0]} exited {result.returncode}:\n{result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def run_failing(argv: Sequence[str | Path]) -> dict[str, Any]:
    """Run a peer that must fail: its exit status is 1; returns its last JSON line."""
    result = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=DEADLINE, check=False
    )
    assert result.returncode == 1, f"{argv[0]} exited {result.returncode}:\n{result.stdout}"
    decoded: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return decoded


class ServerProcess:
    """A peer running as a server; `port` is the one it printed."""

    def __init__(
        self, argv: Sequence[str | Path], *, port_pattern: str = r'^\{"port": ?(\d+)'
    ) -> None:
        self.argv = [str(arg) for arg in argv]
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.wait_for(port_pattern).group(1))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for(self, pattern: str, timeout: float = DEADLINE) -> re.Match[str]:
        """The first new output line matching ``pattern``.

        Raises:
            AssertionError: The peer exited or the deadline passed first; with its output.
        """
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.output.append(line)
            if match := re.search(pattern, line):
                return match
        raise AssertionError(
            f"{self.argv[0]} never printed {pattern!r}:\n" + "\n".join(self.output)
        )

    def outcome(self) -> tuple[int, dict[str, Any]]:
        """The exit status and the JSON line the server printed after its one client."""
        line = self.wait_for(r"^\{.*\}$").string
        code = self.process.wait(timeout=DEADLINE)
        decoded: dict[str, Any] = json.loads(line)
        return code, decoded

    def result(self) -> dict[str, Any]:
        """The server's result line, insisting that it served its client and exited 0."""
        code, decoded = self.outcome()
        if code != 0:
            self._drain()
        assert code == 0, f"{self.argv[0]} exited {code}:\n" + "\n".join(self.output)
        return decoded

    def _drain(self) -> None:
        """Collect what the (exited) peer printed after the lines already read."""
        while (line := self._lines.get(timeout=DEADLINE)) is not None:
            self.output.append(line)

    def stop(self) -> None:
        """End the peer if it still runs (a test that failed before it was done)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=DEADLINE)
        if self.process.stdin is not None:
            self.process.stdin.close()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
