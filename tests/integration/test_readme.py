"""The README, executed: every cheat-sheet command in order, and the workload-library snippet.

The commands are read from README.md itself (the ``sh`` block under "Cheat sheet"), so the
page and this test cannot drift: each command must have an expectation in `CHEAT_SHEET`,
in the same order, and a command that fails or prints something else fails the test.
They run with bash in a scratch directory that links ``.venv``, ``.local`` and
``examples`` from the checkout, as a user at the repository root would run them.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.conftest import LOCAL, ROOT
from tests.integration.support import OperatorProcess, wait_until

README = ROOT / "README.md"
MOUNT_PATH = "/var/run/secrets/certmint"
IDENTITY = "spiffe://cluster.local/ns/payments/sa/ledger"


@dataclasses.dataclass(frozen=True)
class Step:
    """A cheat-sheet command and the output that shows it worked.

    Attributes:
        command: The line exactly as README.md has it.
        shows: A regular expression (``.`` matches newlines) its standard output must match.
        until_shown: A read of the operator's work: run again until it shows (deadline),
            instead of once.
    """

    command: str
    shows: str
    until_shown: bool = False


CHEAT_SHEET = [
    Step(
        "export KUBECONFIG=$PWD/.local/kubeconfig          # after `make cluster-up` / `make run`",
        r"^$",
    ),
    Step("K=.venv/bin/kubectl", r"^$"),
    Step("$K apply -f examples/cluster-issuer.yaml", r"clusterissuer.certmint.io/workloads "),
    Step("$K get cmclusterissuer", r"workloads\s+True\s+CAReady", until_shown=True),
    Step("$K apply -f examples/certificate-claims.yaml", r"certificate.certmint.io/ledger "),
    Step(
        "$K -n payments get cmcert",
        r"ledger\s+True\s+Ready\s+" + re.escape(IDENTITY),
        until_shown=True,
    ),
    Step(
        ".venv/bin/certmint inspect -s payments/ledger-tls",
        rf"Identity\s+{re.escape(IDENTITY)}\n.*Claims\s+role=reader\n.*Chain check\s+verified",
    ),
    Step(
        "$K -n payments get secret ledger-tls -o jsonpath='{.data.tls\\.crt}' | base64 -d > tls.crt",  # noqa: E501
        r"^$",
    ),
    Step(
        "$K -n payments get secret ledger-tls -o jsonpath='{.data.ca\\.crt}' | base64 -d > ca.crt",
        r"^$",
    ),
    Step("openssl verify -CAfile ca.crt tls.crt", r"^tls.crt: OK$"),
    Step(
        ".venv/bin/certmint renew payments/ledger", r"^requested a re-issue of payments/ledger at "
    ),
    Step(
        ".venv/bin/certmint status payments/ledger",
        r"ready\s+True\n.*revision\s+2\n",
        until_shown=True,
    ),
    Step(
        ".venv/bin/certmint rotate-ca workloads",
        r"^requested a CA rotation of ClusterIssuer workloads",
    ),
    Step(
        "$K get cmclusterissuer workloads -o jsonpath='{.status.trustBundle[*].role}'",
        r"^current next$",
        until_shown=True,
    ),
    Step(
        "$K -n payments get configmap certmint-trust -o jsonpath='{.data.ca\\.crt}'",
        r"^(-----BEGIN CERTIFICATE-----\n[^-]+-----END CERTIFICATE-----\n?){2}$",
        until_shown=True,
    ),
    Step(
        "$K get clustertrustbundles --field-selector spec.signerName=certmint.io/workloads",
        r"certmint\.io:workloads:bundle\s+certmint\.io/workloads",
        until_shown=True,
    ),
]


def fenced_block(markdown: str, heading: str, language: str) -> str:
    """The first fenced block of ``language`` after the line ``heading``."""
    section = markdown.split(f"\n{heading}\n", 1)[1]
    match = re.search(rf"^```{language}\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no ```{language} block under {heading!r}"
    return match.group(1)


def cheat_sheet_commands() -> list[str]:
    block = fenced_block(README.read_text(), "## Cheat sheet", "sh")
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_every_cheat_sheet_command_has_an_expectation_in_order() -> None:
    assert [step.command for step in CHEAT_SHEET] == cheat_sheet_commands()


@pytest.fixture
def workdir(tmp_path: Path, kube: client.ApiClient) -> Iterator[Path]:
    """A scratch directory that looks like the repository root; the examples removed after."""
    for name, target in (
        (".venv", ROOT / ".venv"),
        (".local", LOCAL),
        ("examples", ROOT / "examples"),
    ):
        (tmp_path / name).symlink_to(target)
    yield tmp_path
    custom = client.CustomObjectsApi(kube)
    _ignore_missing(
        custom.delete_namespaced_custom_object,
        "certmint.io",
        "v1alpha1",
        "payments",
        "certificates",
        "ledger",
    )
    _ignore_missing(
        custom.delete_cluster_custom_object,
        "certmint.io",
        "v1alpha1",
        "clusterissuers",
        "workloads",
    )
    core = client.CoreV1Api(kube)
    _ignore_missing(core.delete_namespaced_secret, "workloads-ca", "certmint-system")
    _ignore_missing(core.delete_namespaced_secret, "ledger-tls", "payments")


def _ignore_missing(delete: Any, *args: str) -> None:
    try:
        delete(*args)
    except client.ApiException as err:
        if err.status != 404:
            raise


def _run(workdir: Path, setup: list[str], step: Step) -> subprocess.CompletedProcess[str]:
    script = "\n".join([*setup, step.command])
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _shows(step: Step, result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == 0 and bool(
        re.search(step.shows, result.stdout.rstrip("\n"), re.DOTALL)
    )


def _run_step(workdir: Path, setup: list[str], step: Step) -> None:
    """Run once and check, or (``until_shown``) until it shows, within a deadline."""
    if step.until_shown:
        last: list[subprocess.CompletedProcess[str]] = []

        def shown() -> bool:
            last[:] = [_run(workdir, setup, step)]
            return _shows(step, last[0])

        try:
            wait_until(shown, timeout=90, what=f"`{step.command}` to show {step.shows!r}")
        except AssertionError as err:
            raise AssertionError(
                f"{err}\nit last printed:\n{last[0].stdout}{last[0].stderr}"
            ) from None
        return
    result = _run(workdir, setup, step)
    assert result.returncode == 0, f"`{step.command}` failed:\n{result.stderr}"
    assert _shows(step, result), (
        f"`{step.command}` printed:\n{result.stdout}\nwanted {step.shows!r}"
    )


def test_the_cheat_sheet_runs_in_order(workdir: Path, running_operator: OperatorProcess) -> None:
    assert [step.command for step in CHEAT_SHEET] == cheat_sheet_commands()
    setup: list[str] = []
    for step in CHEAT_SHEET:
        _run_step(workdir, setup, step)
        if re.match(r"^(export )?[A-Z_]+=", step.command):
            setup.append(step.command)


def _mount_ledger_secret(workdir: Path, setup: list[str], target: Path) -> None:
    show = Step("$K -n payments get secret ledger-tls -o json", "")
    secret = _run(workdir, setup, show)
    assert secret.returncode == 0, secret.stderr
    mounted = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            str(ROOT / "examples/workload/mount_secret.py"),
            str(target),
        ],
        input=secret.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert mounted.returncode == 0, mounted.stderr


def _handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> ssl.SSLSocket:
    """One mutual-TLS handshake over a socket pair; returns the server's end."""
    server_end, client_end = socket.socketpair()
    result: dict[str, Any] = {}

    def connect() -> None:
        try:
            result["client"] = client_context.wrap_socket(
                client_end, server_hostname="ledger.payments.svc"
            )
        except (OSError, ssl.SSLError) as err:  # reported by the server side's assertion
            result["client_error"] = err

    client_thread = threading.Thread(target=connect)
    client_thread.start()
    server = server_context.wrap_socket(server_end, server_side=True)
    client_thread.join(timeout=30)
    assert "client_error" not in result, result
    result["client"].close()
    return server


def test_the_workload_snippet_runs_on_the_issued_secret(
    workdir: Path, running_operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    setup = [step.command for step in CHEAT_SHEET[:2]]
    for step in CHEAT_SHEET[2:6]:  # the issuer and the Certificate, until Ready
        _run_step(workdir, setup, step)
    mounted = tmp_path_factory.mktemp("ledger-tls")
    _mount_ledger_secret(workdir, setup, mounted)
    snippet = fenced_block(README.read_text(), "## Cheat sheet", "python")
    assert MOUNT_PATH in snippet
    namespace: dict[str, Any] = {}
    exec(compile(snippet.replace(MOUNT_PATH, str(mounted)), "README.md", "exec"), namespace)  # noqa: S102

    server = _handshake(namespace["server_context"], namespace["client_context"])
    identity, decision = namespace["authorize"](server)
    server.close()

    assert identity == IDENTITY
    assert decision.allowed, decision.reason
