"""A real Prometheus (Debian's package) on loopback, for tests.

The server listens on 127.0.0.1 on a free port, keeps its data in a directory the caller
owns, and scrapes only the targets it is given (none by default). Everything is bounded:
start-up, every HTTP request and shutdown have deadlines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
INSTALL_HINT = "run hack/install-prometheus.sh (Debian's prometheus package) first"


def find_binary(name: str) -> Path:
    """Locate a Prometheus tool on PATH.

    Args:
        name: `prometheus` or `promtool`.

    Returns:
        The tool's path.

    Raises:
        FileNotFoundError: the tool is not installed.
    """
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not on PATH; {INSTALL_HINT}")
    return Path(found)


def write_rules_file(prometheus_rule: Path, destination: Path) -> Path:
    """Write a PrometheusRule's `spec.groups` as a plain Prometheus rules file.

    Args:
        prometheus_rule: a monitoring.coreos.com/v1 PrometheusRule manifest.
        destination: the rules file to write.

    Returns:
        `destination`, for passing on to promtool or `PrometheusServer(rule_files=...)`.
    """
    with prometheus_rule.open(encoding="utf-8") as stream:
        groups = yaml.safe_load(stream)["spec"]["groups"]
    destination.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    return destination


def free_loopback_port() -> int:
    """Ask the kernel for a port that is free on 127.0.0.1 right now.

    Returns:
        The port number. Another process could take it before it is used; start-up fails
        loudly in that case rather than talking to the wrong server.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass(frozen=True)
class ApiResponse:
    """One answer of the Prometheus HTTP API.

    Attributes:
        status_code: the HTTP status; 400 means the query did not parse.
        body: the decoded JSON body (`status`, `data` or `errorType` and `error`).
    """

    status_code: int
    body: dict[str, Any]


class PrometheusServer:
    """A Prometheus process on 127.0.0.1, started on enter and stopped on exit.

    Args:
        workdir: a directory for the configuration, the TSDB and the server's log.
        scrape_configs: Prometheus `scrape_configs` entries; targets must be on loopback.
        scrape_interval: the global scrape and rule evaluation interval.
        rule_files: rule files to load.
    """

    def __init__(
        self,
        workdir: Path,
        scrape_configs: list[dict[str, Any]] | None = None,
        scrape_interval: str = "1s",
        rule_files: list[Path] | None = None,
    ) -> None:
        self.workdir = workdir
        self.scrape_configs = scrape_configs or []
        self.scrape_interval = scrape_interval
        self.rule_files = rule_files or []
        self.port = 0
        self.log_path = workdir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The server's root URL, on loopback."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        binary = find_binary("prometheus")
        config_path = self.workdir / "prometheus.yml"
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": self.scrape_configs,
        }
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.port = free_loopback_port()
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._wait_ready()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop()

    def get(self, path: str, params: dict[str, str] | None = None) -> ApiResponse:
        """GET an API path on the server.

        Args:
            path: e.g. `/api/v1/query`.
            params: query-string parameters.

        Returns:
            The status code and decoded JSON body, for error statuses too.
        """
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310 - http on loopback only
                return ApiResponse(response.status, json.loads(response.read()))
        except urllib.error.HTTPError as error:
            with error:
                return ApiResponse(error.code, json.loads(error.read()))

    def query(self, expr: str) -> ApiResponse:
        """Evaluate a PromQL expression now (an instant query)."""
        return self.get("/api/v1/query", {"query": expr, "time": f"{time.time():.3f}"})

    def query_range(self, expr: str, seconds: int = 3600, step_s: int = 60) -> ApiResponse:
        """Evaluate a PromQL expression over the last `seconds` (a range query)."""
        end = time.time()
        return self.get(
            "/api/v1/query_range",
            {
                "query": expr,
                "start": f"{end - seconds:.3f}",
                "end": f"{end:.3f}",
                "step": str(step_s),
            },
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log, for failure messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.base_url + "/-/ready", timeout=1.0) as response,  # noqa: S310 - loopback
            ):
                if response.status == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready after {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
