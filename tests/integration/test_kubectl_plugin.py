"""`kubectl certmint ...`: the plugin found on PATH by the real kubectl, against the real API.

kubectl looks plugins up only when the first argument is not a flag, so the connection
flags come after the plugin's name, as users type them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.integration import support
from tests.integration.conftest import BIN, ROOT

pytestmark = pytest.mark.usefixtures("running_operator")
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "cert-manager"


def plugin(*args: str) -> subprocess.CompletedProcess[str]:
    # Only the venv's bin on PATH besides the system's: kubectl finds kubectl-certmint there.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(BIN / "kubectl"), "certmint", *args],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip


def test_kubectl_lists_the_plugin() -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    listed = subprocess.run(
        [str(BIN / "kubectl"), "plugin", "list", "--name-only"],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip

    assert "kubectl-certmint" in listed.stdout.split()


def test_status_renew_inspect_and_rotate_ca_through_kubectl(
    kube: client.ApiClient, namespace: str, kubeconfig_path: Path
) -> None:
    support.ca_issuer(kube, namespace)
    support.certificate(kube, namespace, serviceAccountName="default")
    support.service_account(kube, namespace, "default")
    first = support.wait_for_condition(kube, namespace, "web")
    config = ("--kubeconfig", str(kubeconfig_path))

    status = plugin("status", "web", "-n", namespace, *config, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["serialNumber"] == first["status"]["serialNumber"]

    listing = plugin("status", "-n", namespace, *config)
    assert listing.returncode == 0, listing.stderr
    assert [line.split()[:4] for line in listing.stdout.splitlines()] == [
        ["NAMESPACE", "NAME", "READY", "REASON"],
        [namespace, "web", "True", "Ready"],
    ]
    # Every namespace: other tests' Certificates too, so only this one's row is checked.
    everywhere = plugin("status", "-A", *config)
    assert [namespace, "web", "True", "Ready"] in [
        line.split()[:4] for line in everywhere.stdout.splitlines()
    ]

    renew = plugin("renew", "web", "-n", namespace, *config)
    assert renew.returncode == 0, renew.stderr
    assert renew.stdout.startswith(f"requested a re-issue of {namespace}/web at ")
    support.wait_for_condition(
        kube, namespace, "web", where=lambda body: body["status"]["revision"] == 2
    )

    inspected = plugin("inspect", "web-tls", "-n", namespace, *config, "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert f"spiffe://test.example/ns/{namespace}/sa/default" in inspected.stdout

    rotate = plugin("rotate-ca", "issuer/ca", "-n", namespace, *config)
    assert rotate.returncode == 0, rotate.stderr
    assert rotate.stdout.startswith(f"requested a CA rotation of Issuer {namespace}/ca at ")


def test_context_and_its_namespace_are_honoured(
    kube: client.ApiClient, namespace: str, kubeconfig_path: Path, tmp_path: Path
) -> None:
    support.ca_issuer(kube, namespace)
    support.certificate(kube, namespace)
    support.wait_for_condition(kube, namespace, "web")
    admin = yaml.safe_load(kubeconfig_path.read_text())
    context = dict(admin["contexts"][0]["context"], namespace=namespace)
    admin["contexts"].append({"name": "payments", "context": context})
    # The current context points at a server nobody listens on: only --context can work.
    admin["clusters"].append({"name": "nowhere", "cluster": {"server": "https://127.0.0.1:1"}})
    admin["contexts"].append({"name": "broken", "context": {**context, "cluster": "nowhere"}})
    admin["current-context"] = "broken"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(admin))

    chosen = plugin("status", "web", "--context", "payments", "--kubeconfig", str(kubeconfig))
    current = plugin("status", "web", "--kubeconfig", str(kubeconfig))

    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.splitlines()[0].split() == ["ready", "True"]
    assert current.returncode != 0


def test_convert_through_kubectl_refuses_a_lossy_input() -> None:
    lossy = plugin("convert", str(FIXTURES / "lossy.yaml"))
    accepted = plugin("convert", "--allow-lossy", str(FIXTURES / "lossy.yaml"))

    assert lossy.returncode == 2
    assert "not converted: ClusterIssuer letsencrypt: spec.acme: " in lossy.stderr
    assert accepted.returncode == 0
    assert [doc["kind"] for doc in yaml.safe_load_all(accepted.stdout)] == [
        "ClusterIssuer",
        "Certificate",
    ]


def test_an_unknown_command_prints_the_usage() -> None:
    unknown = plugin("frobnicate")

    assert unknown.returncode == 2
    assert unknown.stderr.startswith("usage: kubectl certmint COMMAND")
