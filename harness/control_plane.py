"""The local control plane of ``hack/cluster.py`` (etcd + kube-apiserver), and kubectl on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.polling import wait_until

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLUSTER = [sys.executable, str(ROOT / "hack" / "cluster.py")]
CRDS = ROOT / "crds"
APISERVER, ETCD = "kube-apiserver", "etcd"


class ControlPlane:
    """etcd + kube-apiserver whose state (``kubeconfig``, ``cluster.json``...) is ``directory``.

    Drives ``hack/cluster.py`` with ``CERTMINT_LOCAL_DIR=directory``, so several control
    planes can run side by side (the fault suite kills and pauses one of its own).
    """

    def __init__(self, directory: Path, kubeconfig: Path | None = None) -> None:
        self.directory = directory
        self.kubeconfig = kubeconfig or directory / "kubeconfig"

    def cluster(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs ``hack/cluster.py ARGS`` on this control plane.

        Raises:
            AssertionError: It failed (with its stderr), unless ``check`` is false.
        """
        result = subprocess.run(
            [*CLUSTER, *args],
            env={**os.environ, "CERTMINT_LOCAL_DIR": str(self.directory)},
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"cluster.py {' '.join(args)} failed:\n{result.stderr}")
        return result

    def running(self) -> bool:
        """Whether a healthy control plane runs here (``cluster.py status``)."""
        return self.cluster("status", check=False).returncode == 0

    def up(self) -> None:
        """Starts it, or reuses the healthy one already running."""
        self.cluster("up")

    def down(self, *, check: bool = True) -> None:
        """Stops it and removes its state."""
        self.cluster("down", check=check)

    def stop(self, process: str) -> None:
        """SIGKILL to ``etcd`` or ``kube-apiserver``: the process crashes."""
        self.cluster("stop", process)

    def start(self, process: str) -> None:
        """Starts the process again (same ports, data, PKI) and waits until it is ready."""
        self.cluster("start", process)

    def pause(self, process: str) -> None:
        """SIGSTOP."""
        self.cluster("pause", process)

    def resume(self, process: str) -> None:
        """SIGCONT."""
        self.cluster("resume", process)

    def heal(self) -> None:
        """Resumes and starts whatever a test left paused or stopped."""
        for process in (ETCD, APISERVER):
            if self._alive(process):
                self.resume(process)
            else:
                self.start(process)

    def pids(self) -> dict[str, int]:
        """The pids ``cluster.py`` recorded, by process name; empty when it recorded none."""
        try:
            state = json.loads((self.directory / "cluster.json").read_text())
        except (OSError, ValueError):
            return {}
        return {str(name): int(pid) for name, pid in state.get("pids", {}).items()}

    def _alive(self, process: str) -> bool:
        try:
            os.kill(self.pids()[process], 0)
        except (KeyError, ProcessLookupError):
            return False
        return True

    def kubectl(
        self,
        *args: str,
        input: str | None = None,  # noqa: A002 - subprocess.run's name for it
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Runs the pinned kubectl (``make tools`` links it into the venv) on this plane.

        Raises:
            AssertionError: It failed (with its stderr), unless ``check`` is false.
        """
        # A discovery cache of this control plane only: kubectl keys its cache by host and
        # port, and a port reused by an earlier control plane would serve stale discovery.
        argv = [
            str(BIN / "kubectl"),
            f"--kubeconfig={kubeconfig or self.kubeconfig}",
            f"--cache-dir={self.directory / 'kubectl-cache'}",
            *args,
        ]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def install_crds(self) -> None:
        """Applies crds/ and waits until the API server serves every CRD, category included."""
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRDS))
        # kubectl cached discovery from before the CRDs existed; drop it, then wait until
        # discovery (which the API server updates shortly after Established) lists the kinds.
        shutil.rmtree(self.directory / "kubectl-cache", ignore_errors=True)
        kinds = len(list(CRDS.glob("*.yaml")))
        wait_until(
            lambda: (
                len(
                    self.kubectl(
                        "api-resources", "--categories=certmint", "-o", "name"
                    ).stdout.split()
                )
                == kinds
            ),
            timeout=60,
            what="discovery to list the certmint category",
        )
