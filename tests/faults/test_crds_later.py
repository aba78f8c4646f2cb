"""An operator started before its CRDs (and its namespace) exist picks them up when they come.

A bare control plane of its own: no CRDs, no ``certmint-system``. The operator must stay
alive (``/livez`` 200) and say it is not ready (``/readyz`` 503) while its kinds are not
served, then sync and issue once they are installed, without a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.control_plane import ControlPlane
from kubernetes import client, config

from tests.faults import harness
from tests.faults.harness import ROOT
from tests.integration.support import OperatorProcess, wait_until


@pytest.fixture
def bare_control_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path / "bare")
    plane.up()
    yield plane
    plane.down()


def test_crds_installed_after_the_start_are_picked_up(
    bare_control_plane: ControlPlane, tmp_path: Path
) -> None:
    operator = OperatorProcess(bare_control_plane.kubeconfig, tmp_path, "early")
    operator.start(wait_healthy=False)
    try:
        wait_until(lambda: operator.get("/livez")[0] == 200, timeout=30, what="/livez")
        harness.hold(3.0)  # the operator runs a while with nothing to watch
        before = {"running": operator.running, "readyz": operator.get("/readyz")[0]}

        harness.kubectl(bare_control_plane, "apply", "--server-side", "-f", str(ROOT / "crds"))
        harness.kubectl(bare_control_plane, "wait", "--for=condition=Established", "--timeout=60s",
                "-f", str(ROOT / "crds"))  # fmt: skip
        harness.kubectl(bare_control_plane, "apply", "-f", str(ROOT / "deploy" / "namespace.yaml"))
        kube = config.new_client_from_config(config_file=str(bare_control_plane.kubeconfig))
        core = client.CoreV1Api(kube)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="late")))
        wait_until(lambda: operator.get("/readyz")[0] == 200, timeout=60, what="/readyz 200")
        harness.issuer(kube, "late")
        names = harness.burst(kube, "late", 3)
        harness.wait_all_ready(kube, "late", names, timeout=60)

        assert {
            "before the CRDs": before,
            "issued": harness.issued_state(kube, "late", names),
            "after": harness.operator_alive(operator),
        } == {
            "before the CRDs": {"running": True, "readyz": 503},
            "issued": harness.expected_state(names),
            "after": {"running": True, "livez": 200, "readyz": 200},
        }
    finally:
        operator.stop()
