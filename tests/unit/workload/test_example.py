"""The example in examples/workload: mount Secrets, run the server and client as processes."""

from __future__ import annotations

import base64
import json
import pathlib
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.unit.workload import support

EXAMPLE = pathlib.Path(__file__).parents[3] / "examples" / "workload"


def secret_json(leaf: support.Leaf, name: str) -> str:
    """What ``kubectl get secret NAME -o json`` prints for a certmint Secret."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": name, "labels": {"certmint.io/certificate-name": name}},
            "data": {key: base64.b64encode(value).decode() for key, value in leaf.files.items()},
        }
    )


def mount(leaf: support.Leaf, directory: pathlib.Path) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLE / "mount_secret.py"), str(directory)],
        input=secret_json(leaf, directory.name),
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def server_url(pki: support.Pki, tmp_path: pathlib.Path) -> Iterator[str]:
    mount(pki.leaf("payments", "api"), tmp_path / "api-tls")
    process = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE / "server.py"),
            "--credentials",
            str(tmp_path / "api-tls"),
            "--port",
            "0",
            "--allow-claim",
            "role=reader",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    match: re.Match[str] | None = None
    try:
        while not match:
            match = re.search(r"listening on (https://\S+)", lines.get(timeout=30))
        yield f"{match.group(1)}/hello"
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


def run_client(
    url: str, credentials: pathlib.Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "client.py"),
            url,
            "--credentials",
            str(credentials),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_example_client_is_served_and_the_server_sees_its_identity(
    pki: support.Pki, tmp_path: pathlib.Path, server_url: str
) -> None:
    mount(pki.leaf("web", "frontend", claims={"role": ("reader",)}), tmp_path / "web-tls")

    result = run_client(server_url, tmp_path / "web-tls")

    assert (result.returncode, json.loads(result.stdout)) == (
        0,
        {
            "status": 200,
            "body": {
                "hello": "spiffe://cluster.local/ns/web/sa/frontend",
                "claims": {"role": ["reader"]},
                "allowed_by": "role=reader",
            },
        },
    )


@pytest.mark.parametrize(
    ("expect", "returncode", "stderr"),
    [
        pytest.param(
            "spiffe://cluster.local/ns/payments/*", 0, "", id="accept a server that matches"
        ),
        pytest.param(
            "spiffe://cluster.local/ns/billing/*",
            2,
            "refused the server: certificate verify failed: the server is "
            "spiffe://cluster.local/ns/payments/sa/api, not spiffe://cluster.local/ns/billing/*\n",
            id="refuse a server with another identity before sending the request",
        ),
    ],
)
def test_the_example_client_checks_the_server_identity_when_asked(
    pki: support.Pki,
    tmp_path: pathlib.Path,
    server_url: str,
    *,
    expect: str,
    returncode: int,
    stderr: str,
) -> None:
    mount(pki.leaf("web", "frontend", claims={"role": ("reader",)}), tmp_path / "web-tls")

    result = run_client(server_url, tmp_path / "web-tls", "--expect", expect)

    assert (result.returncode, result.stderr) == (returncode, stderr)


def test_the_example_server_answers_403_to_a_caller_without_the_claim(
    pki: support.Pki, tmp_path: pathlib.Path, server_url: str
) -> None:
    mount(pki.leaf("web", "frontend"), tmp_path / "web-tls")

    result = run_client(server_url, tmp_path / "web-tls")

    assert (result.returncode, json.loads(result.stdout)["body"]) == (
        1,
        "forbidden: spiffe://cluster.local/ns/web/sa/frontend denied: "
        "rule 'role=reader': claim 'role' is absent (needs 'reader')\n",
    )
