"""Pod certificate latency: from a PodCertificateRequest's creation to its ``Issued``.

Against a real local control plane, ``certmint run -A`` (a separate process) signs for
``certmint.io/bench-<id>``; a simulated kubelet (tests/integration/node_agent.py, a
``system:node`` client certificate) creates N requests for pods bound to its node, with
keys generated beforehand. A watch on the namespace notes when each request's
``Issued`` condition arrives; the latency is that moment minus the moment just before the
create call (both this process's monotonic clock). Two passes:

* ``paced``: one request every ``1/rate`` seconds, the latency of a request alone;
* ``burst``: all N from ``--threads`` threads at once, the latency under a queue.

Prints p50/p90/p99/max per pass and the load average, writes ``--out`` as JSON.
Not part of ``make test`` (it measures, it asserts nothing).

Run: ``python -m bench.pod_certificates --n 200 --kubeconfig .local/kubeconfig``
(from the repository root, with the control plane up: ``make cluster-up``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import machine, stats
from harness import control_plane, operator_process, polling
from kubernetes import client, config, watch
from tests.integration.node_agent import NodeAgent, PrivateKey, condition_of, generate_key

RESULTS = Path(__file__).with_name("pod-certificates-results.json")


class IssuedWatch:
    """Notes the monotonic time each request of a namespace is first seen answered."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.answered: dict[str, tuple[float, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        while not self._stop.is_set():
            stream = watch.Watch().stream(
                custom.list_namespaced_custom_object,
                "certificates.k8s.io", "v1beta1", self.namespace, "podcertificaterequests",
                timeout_seconds=30,
            )  # fmt: skip
            for event in stream:
                body = event["object"]
                answer = condition_of(body)
                name = body["metadata"]["name"]
                if answer and name not in self.answered:
                    self.answered[name] = (time.monotonic(), answer["type"])
                if self._stop.is_set():
                    return

    def wait(self, names: Sequence[str], timeout: float) -> None:
        polling.wait_until(
            lambda: all(name in self.answered for name in names),
            timeout=timeout,
            what=f"{len(names)} requests answered",
            every=0.05,
        )

    def stop(self) -> None:
        self._stop.set()


def setup(admin: client.ApiClient, kubeconfig: Path, tag: str) -> tuple[NodeAgent, Any, str]:
    """A namespace, ServiceAccount, a signing Issuer (Ready), a node and a pod on it."""
    namespace, signer = f"bench-pcr-{tag}", f"certmint.io/bench-{tag}"
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="app"))
    )
    issuer = {
        "apiVersion": "certmint.io/v1alpha1",
        "kind": "Issuer",
        "metadata": {"name": "pods", "namespace": namespace},
        "spec": {
            "ca": {"secretName": "pods-ca", "generate": {"commonName": "bench pods"}},
            "podCertificates": {"signerName": signer},
        },
    }
    custom = client.CustomObjectsApi(admin)
    custom.create_namespaced_custom_object("certmint.io", "v1alpha1", namespace, "issuers", issuer)
    agent = NodeAgent(admin, kubeconfig, f"bench-node-{tag}")
    agent.register()
    pod = agent.bind_pod(namespace, "app-0", "app")
    return agent, pod, signer


def ensure_namespace(admin: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(admin).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
        )
    except client.ApiException as err:
        if err.status != 409:
            raise


def one_pass(
    agent: NodeAgent,
    pod: Any,
    signer: str,
    keys: Sequence[PrivateKey],
    *,
    rate: float = 0.0,
    threads: int = 1,
) -> dict[str, float]:
    """Creates one request per key; returns request name -> monotonic creation time."""
    bodies = [agent.request_body(pod, signer, key) for key in keys]
    created: dict[str, float] = {}
    lock = threading.Lock()

    def create(index: int) -> None:
        if rate:
            time.sleep(max(0.0, start + index / rate - time.monotonic()))  # pacing, not sync
        began = time.monotonic()
        name = agent.create(bodies[index], keys[index]).name
        with lock:
            created[name] = began

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1 if rate else threads) as pool:
        list(pool.map(create, range(len(keys))))
    return created


def summary(created: dict[str, float], answered: dict[str, tuple[float, str]]) -> dict[str, Any]:
    latencies = [answered[name][0] - began for name, began in created.items()]
    outcomes = sorted({answered[name][1] for name in created})
    return {
        "n": len(latencies),
        "outcomes": outcomes,
        **{
            f"p{int(q * 100)}_ms": round(stats.percentile(latencies, q) * 1000, 1)
            for q in (0.5, 0.9, 0.99)
        },
        "max_ms": round(max(latencies) * 1000, 1),
        "span_s": round(max(answered[name][0] for name in created) - min(created.values()), 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--kubeconfig", type=Path, default=Path(".local/kubeconfig"))
    parser.add_argument("--rate", type=float, default=20.0, help="paced pass: requests/s")
    parser.add_argument("--threads", type=int, default=8, help="burst pass: creating threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    admin = config.new_client_from_config(config_file=str(args.kubeconfig))
    tag = uuid.uuid4().hex[:6]
    control_plane.ControlPlane(args.kubeconfig.parent, args.kubeconfig).install_crds()
    ensure_namespace(admin, operator_process.OPERATOR_NAMESPACE)
    log_dir = Path(tempfile.mkdtemp(prefix="pcr-bench-"))
    operator = operator_process.OperatorProcess(args.kubeconfig, log_dir, "pcr-bench")
    try:
        operator.start(timeout=60)  # inside the try: a start that times out is stopped too
        agent, pod, signer = setup(admin, args.kubeconfig, tag)
        watcher = IssuedWatch(admin, pod.metadata.namespace)
        warm = one_pass(agent, pod, signer, [generate_key("ECDSAP256")])
        watcher.wait(list(warm), 60)  # the issuer is Ready and its bundle published
        results: dict[str, Any] = {"load_before": os.getloadavg()}
        for name, rate in (("paced", args.rate), ("burst", 0.0)):
            keys = [generate_key("ECDSAP256") for _ in range(args.n)]
            created = one_pass(agent, pod, signer, keys, rate=rate, threads=args.threads)
            watcher.wait(list(created), 300)
            results[name] = summary(created, watcher.answered)
            results[f"load_after_{name}"] = os.getloadavg()
        watcher.stop()
    finally:
        operator.stop()
    results["machine"] = machine.machine_info()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    for name in ("paced", "burst"):
        row = results[name]
        print(
            f"{name:6} n={row['n']} p50={row['p50_ms']}ms p90={row['p90_ms']}ms "
            f"p99={row['p99_ms']}ms max={row['max_ms']}ms span={row['span_s']}s "
            f"load(1m,5m,15m) after={tuple(round(v, 2) for v in results[f'load_after_{name}'])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
