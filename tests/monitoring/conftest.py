"""Fixtures for the monitoring tests: Debian's promtool and a Prometheus on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.monitoring import prometheus_server


@pytest.fixture(scope="session")
def promtool() -> Path:
    """The promtool binary; fails (not skips) when Prometheus is not installed."""
    try:
        return prometheus_server.find_binary("promtool")
    except FileNotFoundError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[prometheus_server.PrometheusServer]:
    """A Prometheus on 127.0.0.1 with no scrape targets, for checking PromQL."""
    try:
        prometheus_server.find_binary("prometheus")
    except FileNotFoundError as error:
        pytest.fail(str(error))
    with prometheus_server.PrometheusServer(tmp_path_factory.mktemp("prometheus")) as server:
        yield server
