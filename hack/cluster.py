"""A real local Kubernetes control plane (etcd + kube-apiserver) on loopback.

Usage: ``python hack/cluster.py up|down|status``; for fault tests
``python hack/cluster.py stop|start|pause|resume etcd|kube-apiserver``: ``stop`` is a
SIGKILL (a crash), ``start`` runs the process again with its original command (same ports,
same data directory, same PKI), ``pause``/``resume`` send SIGSTOP/SIGCONT.

``up`` is idempotent: a healthy running control plane is reused; a stale one (dead
processes, leftover state) is cleaned up and started afresh. Ports are chosen free at
start, so a port already in use elsewhere never blocks it. State lives in ``.local/``:
``kubeconfig`` (admin), ``cluster.json`` (ports, pids), ``pki/``, ``etcd/``, ``logs/``.

The binaries come from the version-keyed cache that ``hack/build-control-plane.sh``
fills; the Makefile links them into ``.venv/bin``.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("CERTMINT_LOCAL_DIR", ROOT / ".local"))
BIN = Path(sys.executable).parent
STARTUP_DEADLINE_S = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pem(obj: Any) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return bytes(
        obj.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    sans: list[x509.GeneralName] | None = None,
    usage: ExtendedKeyUsageOID | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _make_pki(pki: Path) -> dict[str, Path]:
    """Creates a throwaway serving CA, client CA (with its key), admin client cert, SA key."""
    pki.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        path = pki / name
        path.write_bytes(data)
        path.chmod(0o600)
        files[name] = path

    def named(cn: str, org: str | None = None) -> x509.Name:
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        if org:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(attrs)

    serving_ca_key = ec.generate_private_key(ec.SECP256R1())
    serving_ca = _certificate(named("certmint-local-serving-ca"), serving_ca_key, None, ca=True)
    apiserver_key = ec.generate_private_key(ec.SECP256R1())
    apiserver = _certificate(
        named("kube-apiserver"),
        apiserver_key,
        (serving_ca, serving_ca_key),
        sans=[
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        ],
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client_ca_key = ec.generate_private_key(ec.SECP256R1())
    client_ca = _certificate(named("certmint-local-client-ca"), client_ca_key, None, ca=True)
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _certificate(
        named("admin", "system:masters"),
        admin_key,
        (client_ca, client_ca_key),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    write("serving-ca.crt", _pem(serving_ca))
    write("apiserver.crt", _pem(apiserver))
    write("apiserver.key", _pem(apiserver_key))
    write("client-ca.crt", _pem(client_ca))
    # Kept so tests can mint node identities (CN=system:node:<name>, O=system:nodes), as a
    # cluster's bootstrap would; it never leaves .local/pki (mode 0600).
    write("client-ca.key", _pem(client_ca_key))
    write("admin.crt", _pem(admin))
    write("admin.key", _pem(admin_key))
    write("sa.key", _pem(sa_key))
    write(
        "sa.pub",
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    return files


def _kubeconfig(server: str, pki: Path) -> dict[str, Any]:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "certmint-local",
                "cluster": {"server": server, "certificate-authority-data": b64("serving-ca.crt")},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64("admin.crt"),
                    "client-key-data": b64("admin.key"),
                },
            }
        ],
        "contexts": [
            {"name": "certmint-local", "context": {"cluster": "certmint-local", "user": "admin"}}
        ],
        "current-context": "certmint-local",
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _get(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as err:
        return 0, str(err)


def _admin_context(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "serving-ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


def _healthy(state: dict[str, Any]) -> bool:
    if not all(_alive(pid) for pid in state["pids"].values()):
        return False
    ready, _ = _apiserver_ready(
        f"https://127.0.0.1:{state['apiserver_port']}", _admin_context(STATE / "pki")
    )
    return ready


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> tuple[bool, str]:
    code, body = _get(url, context)
    return code == 200, f"HTTP {code}: {body[:200]}"


def _apiserver_ready(server: str, context: ssl.SSLContext) -> tuple[bool, str]:
    """Ready when /livez and /readyz both answer `ok` and namespace default can be read."""
    for probe in ("/livez", "/readyz"):
        code, body = _get(f"{server}{probe}", context)
        if (code, body.strip()) != (200, "ok"):
            return False, f"{probe}: HTTP {code}: {body[-300:]}"
    return _http_ok(f"{server}/api/v1/namespaces/default", context)


def _wait(what: str, check: Any, log: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise SystemExit(
                f"{what} exited with code {proc.returncode}; last lines of {log}:\n{tail}"
            )
        ok, last = check()
        if ok:
            return
        time.sleep(0.2)  # polling a readiness endpoint, not synchronizing on time
    raise SystemExit(f"{what} not ready after {STARTUP_DEADLINE_S:.0f}s ({last}); see {log}")


def _binary(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make tools` (builds the control-plane binaries)")
    return str(path)


def _read_state() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((STATE / "cluster.json").read_text())
    except (OSError, ValueError):
        return None
    return data


def down(quiet: bool = False) -> None:
    state = _read_state()
    pids = list(state["pids"].values()) if state else []
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGCONT)  # a paused process could not act on SIGTERM
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting for processes to exit, bounded
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    for name in ("cluster.json", "kubeconfig"):
        (STATE / name).unlink(missing_ok=True)
    for name in ("etcd", "pki", "kubectl-cache"):
        shutil.rmtree(STATE / name, ignore_errors=True)
    if not quiet:
        print("control plane stopped" if pids else "control plane was not running")


def _etcd_command(etcd_port: int, peer_port: int) -> list[str]:
    return [
        _binary("etcd"),
        "--name=certmint-local",
        f"--data-dir={STATE / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
        f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
        f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
        f"--initial-cluster=certmint-local=http://127.0.0.1:{peer_port}",
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=8589934592",
        "--log-level=warn",
    ]


def _apiserver_command(etcd_port: int, api_port: int, pki: Path) -> list[str]:
    server = f"https://127.0.0.1:{api_port}"
    return [
        _binary("kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        f"--cert-dir={pki}",
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'client-ca.crt'}",
        f"--secure-port={api_port}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        "--service-cluster-ip-range=10.0.0.0/24",
        # Node first: the node authorizer and NodeRestriction let a kubelet's identity
        # (CN=system:node:<name>) create PodCertificateRequests for its own pods only.
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--service-account-issuer={server}/",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--disable-admission-plugins=ServiceAccount",
        "--runtime-config=certificates.k8s.io/v1beta1/clustertrustbundles=true,"
        "certificates.k8s.io/v1beta1/podcertificaterequests=true",
        # PodCertificateRequest is beta and off by default (1.35, 1.36); the gate it depends
        # on, AuthorizeNodeWithSelectors, is GA and locked on since 1.34.
        "--feature-gates=ClusterTrustBundle=true,PodCertificateRequest=true",
        "--max-requests-inflight=800",
        "--max-mutating-requests-inflight=400",
        "--v=1",
    ]


def _launch(name: str, command: list[str]) -> subprocess.Popen[bytes]:
    """Starts one control-plane process in its own session, appending to its log."""
    log = STATE / "logs" / f"{name}.log"
    return subprocess.Popen(
        command,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_ready(name: str, state: dict[str, Any], proc: subprocess.Popen[bytes]) -> None:
    """Waits until ``name`` (etcd or kube-apiserver) answers its readiness check."""
    log = STATE / "logs" / f"{name}.log"
    if name == "etcd":
        url = f"http://127.0.0.1:{state['etcd_port']}/health"
        _wait("etcd", lambda: _http_ok(url), log, proc)
        return
    server = f"https://127.0.0.1:{state['apiserver_port']}"
    context = _admin_context(STATE / "pki")
    _wait("kube-apiserver", lambda: _apiserver_ready(server, context), log, proc)


def _write_state(state: dict[str, Any]) -> None:
    (STATE / "cluster.json").write_text(json.dumps(state))


def up() -> None:
    state = _read_state()
    if state and _healthy(state):
        print(f"control plane already running at https://127.0.0.1:{state['apiserver_port']}")
        return
    if state:
        print("found a stale control plane in .local/; cleaning it up", file=sys.stderr)
    down(quiet=True)

    started = time.monotonic()
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    pki = STATE / "pki"
    _make_pki(pki)
    etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
    state = {
        "apiserver_port": api_port,
        "etcd_port": etcd_port,
        "pids": {},
        "commands": {
            "etcd": _etcd_command(etcd_port, peer_port),
            "kube-apiserver": _apiserver_command(etcd_port, api_port, pki),
        },
    }
    for name in PROCESSES:
        proc = _launch(name, state["commands"][name])
        state["pids"][name] = proc.pid
        _wait_ready(name, state, proc)
    server = f"https://127.0.0.1:{api_port}"
    (STATE / "kubeconfig").write_text(yaml.safe_dump(_kubeconfig(server, pki)))
    (STATE / "kubeconfig").chmod(0o600)
    _write_state(state)
    print(f"control plane ready at {server} in {time.monotonic() - started:.1f}s")
    print(f"kubeconfig: {STATE / 'kubeconfig'}")


# Faults: stop, start, pause and resume one process of a running control plane ------------
#: The control plane's processes, in start order.
PROCESSES = ("etcd", "kube-apiserver")


def _running_state(name: str) -> dict[str, Any]:
    if name not in PROCESSES:
        raise SystemExit(f"unknown process {name!r}; expected one of {', '.join(PROCESSES)}")
    state = _read_state()
    if state is None or "commands" not in state:
        raise SystemExit(f"no control plane in {STATE} (run `up` first)")
    return state


def stop_process(name: str) -> None:
    """Kills ``name`` with SIGKILL (a crash) and waits until it is gone; idempotent."""
    state = _running_state(name)
    pid = int(state["pids"][name])
    if _alive(pid):
        os.kill(pid, signal.SIGCONT)  # a paused process is killed just the same
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for the kernel to end the process, bounded
    if _alive(pid):
        raise SystemExit(f"{name} (pid {pid}) survived SIGKILL for 15 s")


def start_process(name: str, *, wait: bool = True) -> None:
    """Starts ``name`` again with its original command: same ports, data dir and PKI.

    A process that is running already is left alone (so a test can always heal the plane).
    """
    state = _running_state(name)
    if _alive(int(state["pids"][name])):
        return
    proc = _launch(name, state["commands"][name])
    state["pids"][name] = proc.pid
    _write_state(state)
    if wait:
        _wait_ready(name, state, proc)


def signal_process(name: str, number: signal.Signals) -> None:
    """Sends SIGSTOP (pause) or SIGCONT (resume) to ``name``."""
    state = _running_state(name)
    pid = int(state["pids"][name])
    if not _alive(pid):
        raise SystemExit(f"{name} is not running")
    os.kill(pid, number)


def status() -> int:
    state = _read_state()
    if state and _healthy(state):
        print(f"running at https://127.0.0.1:{state['apiserver_port']}")
        return 0
    print("not running")
    return 1


USAGE = (
    "usage: cluster.py up|down|status\n"
    "       cluster.py stop|start|pause|resume etcd|kube-apiserver"
)


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "status"
    simple = {"up": up, "down": down}
    if command in simple and len(sys.argv) <= 2:
        simple[command]()
        return 0
    if command == "status":
        return status()
    faults = {
        "stop": stop_process,
        "start": start_process,
        "pause": functools.partial(signal_process, number=signal.SIGSTOP),
        "resume": functools.partial(signal_process, number=signal.SIGCONT),
    }
    if command in faults and len(sys.argv) == 3:
        faults[command](sys.argv[2])
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
