"""``certmint run`` as a real subprocess against a kubeconfig: start, probe, scrape, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from harness.polling import wait_until

BIN = Path(sys.executable).parent
#: Where ``certmint run`` keeps its Lease and Events (``CERTMINT_NAMESPACE``).
OPERATOR_NAMESPACE = "certmint-system"


class OperatorExitedError(AssertionError):
    """The operator process ended while it was expected to run (its log tail attached)."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metric_values(text: str, names: Iterable[str]) -> dict[str, float]:
    """The samples of the metrics ``names`` on a metrics page, by their sample text.

    A plain line scan, not a full parse: at 10,000 Certificates the page has 50,000
    lines, and a benchmark must not steal the CPU it is measuring.

    Returns:
        ``{'name{label="value"}': value}`` (``'name'`` when unlabelled), as exposed.
    """
    prefixes = tuple(f"{name}{{" for name in names) + tuple(f"{name} " for name in names)
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(prefixes):
            sample, _, value = line.rpartition(" ")
            values[sample] = float(value)
    return values


class OperatorProcess:
    """One ``certmint run`` process at a time, on a fresh metrics port at every start.

    Each start logs (stdout and stderr) to ``<log_dir>/<name>-<start>.log``.
    """

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        name: str = "operator",
        *,
        options: Sequence[str] = (),
        profile: Path | None = None,
        stop_timeout: float = 20.0,
    ) -> None:
        """Describes the process; nothing starts yet.

        Args:
            kubeconfig: Whom the operator talks to, as whom.
            log_dir: Where the logs go.
            name: Names the log files.
            options: ``certmint run`` options after the metrics address and port.
            profile: Run under pyinstrument, its report in ``<profile stem>-<start>``
                (HTML when the suffix is ``.html``, text otherwise).
            stop_timeout: Seconds a stop waits after SIGTERM before it sends SIGKILL.
        """
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.name = name
        self.options = tuple(options)
        self.profile = profile
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        self.log_path = log_dir / f"{name}.log"
        self.starts = 0

    def argv(self, run_args: Sequence[str], kubeconfig: Path) -> list[str]:
        """The command line of the next start."""
        command = [
            "--kubeconfig",
            str(kubeconfig),
            "run",
            *(run_args or ("-A",)),
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            *self.options,
        ]
        if self.profile is None:
            return [str(BIN / "certmint"), *command]
        renderer = "html" if self.profile.suffix == ".html" else "text"
        report = self.profile.with_stem(f"{self.profile.stem}-{self.starts}")
        return [
            str(BIN / "python"), "-m", "pyinstrument", "-r", renderer, "-o", str(report),
            "-m", "certmint", *command,
        ]  # fmt: skip

    def start(
        self,
        *run_args: str,
        kubeconfig: Path | None = None,
        env: Mapping[str, str] | None = None,
        wait_healthy: bool = True,
        timeout: float = 30.0,
    ) -> OperatorProcess:
        """Starts the process (``run -A`` unless ``run_args`` say otherwise).

        Args:
            run_args: Arguments right after ``run``.
            kubeconfig: Another kubeconfig for this start only.
            env: Added to this process's environment.
            wait_healthy: Return only once ``/healthz`` answers 200.
            timeout: Seconds to wait for that.

        Raises:
            OperatorExitedError: It ended before it was healthy.
            DeadlineExceededError: It was not healthy within ``timeout`` seconds.
        """
        self.metrics_port = free_port()
        self.starts += 1
        self.log_path = self.log_dir / f"{self.name}-{self.starts}.log"
        argv = self.argv(run_args, kubeconfig or self.kubeconfig)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "CERTMINT_NAMESPACE": OPERATOR_NAMESPACE, **(env or {})},
            )
        if wait_healthy:
            wait_until(self.healthy, timeout=timeout, what=f"{self.name} /healthz")
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_running(self) -> None:
        """Raises OperatorExitedError, with the end of the log, unless the process runs."""
        if not self.running:
            tail = self.log()[-3000:]
            raise OperatorExitedError(f"{self.name} exited; log {self.log_path}:\n{tail}")

    def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200; raises OperatorExitedError if the process ended."""
        self.check_running()
        return self.get("/healthz")[0] == 200

    def get(self, path: str) -> tuple[int, str]:
        """GETs a path of the metrics and probes server: (status, body); (0, "") unreachable."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}{path}", timeout=10
            ) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as err:
            return int(err.code), ""
        except OSError:
            return 0, ""

    def metrics(self) -> str:
        """The whole ``/metrics`` page."""
        code, body = self.get("/metrics")
        if code != 200:
            raise AssertionError(f"/metrics answered {code}")
        return body

    def metric_values(self, *names: str) -> dict[str, float]:
        """Only the metrics named (``/metrics?name[]=``: the operator renders no more).

        Returns:
            As `metric_values`; empty when the page did not answer 200.

        Raises:
            OperatorExitedError: The process ended.
        """
        self.check_running()
        query = urllib.parse.urlencode([("name[]", name) for name in names])
        status, text = self.get(f"/metrics?{query}")
        return metric_values(text, names) if status == 200 else {}

    def log(self) -> str:
        """The log of the latest start."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Sends ``sig``; SIGKILL when the process has not ended ``stop_timeout`` s later."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the process crashes."""
        self.stop(signal.SIGKILL)
