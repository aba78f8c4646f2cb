"""Two operators on disjoint namespace shards: each issues its own namespaces, once.

Two real ``certmint run -n ... -n ...`` processes run side by side against the real API
server, each with its own ``$CERTMINT_NAMESPACE`` and its own Lease (the second one also
renamed with ``--lease-name``), as docs/operations.md's sharding procedure sets them up.
A fifth namespace belongs to no shard. Certificates are created in all five; the proof
that the shards split the work and nothing was issued twice is taken from four
independent sources: the objects (every Certificate Ready at revision 1, its Secret's
serial the one its status names), the API server's own request counter (one Secret
create per Certificate and CA, no Secret update), each shard's log (it issued exactly
its own namespaces' Certificates, and no line names another namespace) and each shard's
metrics (only its own namespaces).

Overlapping shards fail it: with one namespace in both shards' ``-n`` lists, the second
shard's log and metrics name that namespace (whether or not it also won a race to issue
there: a Secret create that loses to the other shard's is refused by the API server).
"""

from __future__ import annotations

import collections
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import pytest
from bench import api_writes
from kubernetes import client

from tests.integration.support import (
    OperatorProcess,
    ca_issuer,
    certificate,
    condition,
    create,
    get_certificate,
    issuances,
    wait_until,
)

PER_NAMESPACE = 8  # Certificates in each namespace
NAMESPACE_LABEL = re.compile(r'[{,]namespace="([^"]+)"')


@dataclass(frozen=True)
class Layout:
    """The namespaces of one test run: two per shard, one unowned, one system namespace each."""

    run: str

    def shard(self, shard: str) -> tuple[str, str]:
        return (f"shard-{shard}1-{self.run}", f"shard-{shard}2-{self.run}")

    def system(self, shard: str) -> str:
        return f"certmint-{shard}-{self.run}"

    @property
    def unowned(self) -> str:
        return f"unowned-{self.run}"

    @property
    def workloads(self) -> tuple[str, ...]:
        return (*self.shard("a"), *self.shard("b"), self.unowned)

    @property
    def everything(self) -> tuple[str, ...]:
        return (*self.workloads, self.system("a"), self.system("b"))


@pytest.fixture
def layout(kube: client.ApiClient, running_operator: OperatorProcess) -> Iterator[Layout]:
    """Fresh namespaces; the session operator (``-A``: it would serve every shard) stopped."""
    running_operator.stop()
    layout = Layout(uuid.uuid4().hex[:6])
    core = client.CoreV1Api(kube)
    for name in layout.everything:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield layout
    custom = client.CustomObjectsApi(kube)
    for name in layout.workloads:
        for plural in ("certificates", "issuers"):
            custom.delete_collection_namespaced_custom_object(
                "certmint.io", "v1alpha1", name, plural
            )
    for name in layout.everything:
        core.delete_namespace(name)


def start_shard(
    layout: Layout, shard: str, kubeconfig: Path, log_dir: Path, *lease_name: str
) -> OperatorProcess:
    """``certmint run -n <its two namespaces>`` in its own system namespace, JSON logs."""
    process = OperatorProcess(
        kubeconfig,
        log_dir,
        name=f"shard-{shard}",
        extra_args=("--log-format=json", f"--identity=shard-{shard}", *lease_name),
    )
    scope = [arg for namespace in layout.shard(shard) for arg in ("-n", namespace)]
    return process.start(*scope, env={"CERTMINT_NAMESPACE": layout.system(shard)})


def logged_namespaces(json_log: str) -> set[str]:
    """Every namespace a JSON log line names (what the shard acted on or looked at)."""
    found: set[str] = set()
    for line in json_log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "namespace" in entry:
            found.add(str(entry["namespace"]))
    return found


def api_server_requests(kube: client.ApiClient) -> dict[api_writes.RequestKey, float]:
    """The API server's ``apiserver_request_total``, as `bench.api_writes` sums it."""
    response = kube.rest_client.request("GET", f"{kube.configuration.host}/metrics")
    return api_writes.request_counts(response.read().decode())


def lease_holders(kube: client.ApiClient, layout: Layout) -> dict[str, str | None]:
    """``namespace/name`` -> holder of every Lease in the shards' system namespaces."""
    coordination = client.CoordinationV1Api(kube)
    return {
        f"{namespace}/{lease.metadata.name}": lease.spec.holder_identity
        for namespace in (layout.system("a"), layout.system("b"))
        for lease in coordination.list_namespaced_lease(namespace).items
    }


def ready_revisions(kube: client.ApiClient, namespace: str) -> dict[str, tuple[int, str]] | None:
    """Per Certificate of a namespace: (status revision, Secret revision), once all are Ready."""
    core = client.CoreV1Api(kube)
    result: dict[str, tuple[int, str]] = {}
    for index in range(PER_NAMESPACE):
        name = f"cert-{index}"
        status = get_certificate(kube, namespace, name).get("status") or {}
        ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
        if not ready or ready[0].get("status") != "True":
            return None
        secret = core.read_namespaced_secret(f"{name}-tls", namespace)
        annotations = secret.metadata.annotations
        assert annotations["certmint.io/serial"] == status["serialNumber"], name
        result[f"{namespace}/{name}"] = (status["revision"], annotations["certmint.io/revision"])
    return result


def test_two_shards_each_issue_their_own_namespaces_exactly_once(
    kube: client.ApiClient, kubeconfig_path: Path, layout: Layout, tmp_path: Path
) -> None:
    started = time.monotonic()
    shards = {
        "a": start_shard(layout, "a", kubeconfig_path, tmp_path),
        "b": start_shard(
            layout, "b", kubeconfig_path, tmp_path, "--lease-name=certmint-leader-shard-b"
        ),
    }
    try:
        before = api_server_requests(kube)
        for namespace in layout.workloads:
            ca_issuer(kube, namespace)
            for index in range(PER_NAMESPACE):
                certificate(kube, namespace, f"cert-{index}")
        owned = [*layout.shard("a"), *layout.shard("b")]
        revisions: dict[str, tuple[int, str]] = {}
        for namespace in owned:
            found = wait_until(
                lambda namespace=namespace: ready_revisions(kube, namespace),
                timeout=60,
                what=f"every Certificate of {namespace} Ready",
            )
            revisions.update(found)
        issued_in = time.monotonic() - started
        writes = api_writes.writes_between(before, api_server_requests(kube))
        logged = {shard: issuances(process.log()) for shard, process in shards.items()}
        in_logs = {shard: logged_namespaces(process.log()) for shard, process in shards.items()}
        in_metrics = {
            shard: set(NAMESPACE_LABEL.findall(process.metrics()))
            for shard, process in shards.items()
        }
        holders = lease_holders(kube, layout)
    finally:
        for process in shards.values():
            process.stop()
    print(f"\nsharding: {len(owned) * PER_NAMESPACE} Certificates on 2 shards in {issued_in:.1f}s")

    times_issued = collections.Counter(where for _, where, _ in logged["a"] + logged["b"])
    unowned = get_certificate(kube, layout.unowned, "cert-0")
    secrets_per_namespace = PER_NAMESPACE + 1  # the Certificates' and the generated CA
    assert {
        "revisions": revisions,
        "times each Certificate was issued": dict(times_issued),
        "namespaces each shard issued in": {
            shard: {where.split("/")[0] for _, where, _ in items} for shard, items in logged.items()
        },
        "namespaces in each shard's log lines": in_logs,
        "namespaces in each shard's metrics": in_metrics,
        "Secret writes the API server counted": {
            verb: writes.get(f"{verb} secrets", 0) for verb in ("POST", "PUT", "PATCH")
        },
        "Leases": holders,
        "the unowned namespace's Certificate": unowned.get("status"),
    } == {
        "revisions": {
            f"{namespace}/cert-{index}": (1, "1")
            for namespace in owned
            for index in range(PER_NAMESPACE)
        },
        "times each Certificate was issued": dict.fromkeys(revisions, 1),
        "namespaces each shard issued in": {
            "a": set(layout.shard("a")),
            "b": set(layout.shard("b")),
        },
        "namespaces in each shard's log lines": {
            "a": set(layout.shard("a")),
            "b": set(layout.shard("b")),
        },
        "namespaces in each shard's metrics": {
            "a": set(layout.shard("a")),
            "b": set(layout.shard("b")),
        },
        "Secret writes the API server counted": {
            "POST": len(owned) * secrets_per_namespace,
            "PUT": 0,
            "PATCH": 0,
        },
        "Leases": {
            f"{layout.system('a')}/certmint-leader": "shard-a",
            f"{layout.system('b')}/certmint-leader-shard-b": "shard-b",
        },
        "the unowned namespace's Certificate": None,
    }


# Label-selector shards -----------------------------------------------------------------
@dataclass(frozen=True)
class Labelled:
    """Namespaces labelled ``<key>=a`` or ``=b``; ``mover`` starts in shard a."""

    run: str

    @property
    def key(self) -> str:
        return f"shard-{self.run}"

    @property
    def system(self) -> str:
        return f"certmint-sel-{self.run}"

    def name(self, role: str) -> str:
        return f"sel-{role}-{self.run}"

    @property
    def workloads(self) -> dict[str, str]:
        """Namespace -> the shard it starts in."""
        return {self.name("a"): "a", self.name("b"): "b", self.name("mover"): "a"}


@pytest.fixture
def labelled(kube: client.ApiClient, running_operator: OperatorProcess) -> Iterator[Labelled]:
    """Fresh labelled namespaces; the session operator stopped (it would serve them all)."""
    running_operator.stop()
    labelled = Labelled(uuid.uuid4().hex[:6])
    core = client.CoreV1Api(kube)
    for name, shard in {**labelled.workloads, labelled.system: ""}.items():
        labels = {labelled.key: shard} if shard else {}
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )
    yield labelled
    custom = client.CustomObjectsApi(kube)
    for name in labelled.workloads:
        for plural in ("certificates", "issuers"):
            custom.delete_collection_namespaced_custom_object(
                "certmint.io", "v1alpha1", name, plural
            )
    for name in (*labelled.workloads, labelled.system):
        core.delete_namespace(name)


def namespaces_in_metrics(process: OperatorProcess) -> set[str] | None:
    """The namespaces a shard's ``/metrics`` names; None while it restarts (no page)."""
    process.check_running()
    status, text = process.get("/metrics")
    return set(NAMESPACE_LABEL.findall(text)) if status == HTTPStatus.OK else None


def test_label_selector_shards_hand_over_a_namespace_that_changes_shard(
    kube: client.ApiClient, kubeconfig_path: Path, labelled: Labelled, tmp_path: Path
) -> None:
    shards = {
        shard: OperatorProcess(
            kubeconfig_path,
            tmp_path,
            name=f"selector-{shard}",
            extra_args=("--log-format=json", f"--identity=shard-{shard}"),
        ).start(
            f"--namespace-selector={labelled.key}={shard}",
            env={"CERTMINT_NAMESPACE": labelled.system},
        )
        for shard in ("a", "b")
    }
    mover = labelled.name("mover")
    try:
        before = api_server_requests(kube)
        for namespace in labelled.workloads:
            ca_issuer(kube, namespace)
            for index in range(PER_NAMESPACE):
                certificate(kube, namespace, f"cert-{index}")
        for namespace in labelled.workloads:
            wait_until(
                lambda namespace=namespace: ready_revisions(kube, namespace),
                timeout=60,
                what=f"every Certificate of {namespace} Ready",
            )
        served_before = {shard: namespaces_in_metrics(p) for shard, p in shards.items()}

        moved_at = time.monotonic()
        client.CoreV1Api(kube).patch_namespace(mover, {"metadata": {"labels": {labelled.key: "b"}}})
        expected_after = {"a": {labelled.name("a")}, "b": {labelled.name("b"), mover}}
        wait_until(
            lambda: all(
                namespaces_in_metrics(process) == expected_after[shard]
                for shard, process in shards.items()
            ),
            timeout=60,
            what=f"{mover} served by shard b alone",
        )
        handed_over = time.monotonic() - moved_at
        certificate(kube, mover, "after-move")
        wait_until(
            lambda: (get_certificate(kube, mover, "after-move").get("status") or {}).get(
                "revision"
            ),
            timeout=60,
            what="the Certificate created after the move issued",
        )
        writes = api_writes.writes_between(before, api_server_requests(kube))
        revisions = {ns: ready_revisions(kube, ns) for ns in labelled.workloads}
        issued = {shard: issuances(p.log()) for shard, p in shards.items()}
        holders = {
            lease.metadata.name: lease.spec.holder_identity
            for lease in client.CoordinationV1Api(kube).list_namespaced_lease(labelled.system).items
        }
    finally:
        for process in shards.values():
            process.stop()
    print(f"\nselector shards: {mover} handed over to shard b in {handed_over:.1f}s")

    times_issued = collections.Counter(where for items in issued.values() for _, where, _ in items)
    assert {
        "served before the move": served_before,
        "revisions after the move": revisions,
        "times each Certificate was issued": dict(times_issued),
        "who issued after-move": [
            shard
            for shard, items in issued.items()
            for _, where, _ in items
            if where == f"{mover}/after-move"
        ],
        "Secret writes the API server counted": {
            verb: writes.get(f"{verb} secrets", 0) for verb in ("POST", "PUT", "PATCH")
        },
        "Leases": holders,
    } == {
        "served before the move": {
            "a": {labelled.name("a"), mover},
            "b": {labelled.name("b")},
        },
        "revisions after the move": {
            ns: {f"{ns}/cert-{index}": (1, "1") for index in range(PER_NAMESPACE)}
            for ns in labelled.workloads
        },
        "times each Certificate was issued": {
            **{
                f"{ns}/cert-{index}": 1
                for ns in labelled.workloads
                for index in range(PER_NAMESPACE)
            },
            f"{mover}/after-move": 1,
        },
        "who issued after-move": ["b"],
        "Secret writes the API server counted": {
            # every Certificate's and every generated CA's, once; nothing rewritten
            "POST": len(labelled.workloads) * (PER_NAMESPACE + 1) + 1,
            "PUT": 0,
            "PATCH": 0,
        },
        "Leases": {"certmint-leader-a": "shard-a", "certmint-leader-b": "shard-b"},
    }


def log_messages(json_log: str) -> list[str]:
    """The messages of a JSON log."""
    messages = []
    for line in json_log.splitlines():
        try:
            messages.append(str(json.loads(line).get("message", "")))
        except ValueError:
            continue
    return messages


def generated_cluster_cas(kube: client.ApiClient, namespace: str) -> bool:
    """Whether the CA Secret of every ClusterIssuer that generates one is in ``namespace``.

    Other tests' ClusterIssuers may still exist: the managing shard generates their CAs in
    its fresh operator namespace first, and those creates must not count as this test's.
    """
    custom = client.CustomObjectsApi(kube)
    wanted = {
        item["spec"]["ca"]["secretName"]
        for item in custom.list_cluster_custom_object("certmint.io", "v1alpha1", "clusterissuers")[
            "items"
        ]
        if (item.get("spec") or {}).get("ca", {}).get("generate")
    }
    present = {
        secret.metadata.name
        for secret in client.CoreV1Api(kube).list_namespaced_secret(namespace).items
    }
    return wanted <= present


def test_every_selector_shard_signs_with_a_cluster_issuer_that_one_shard_manages(
    kube: client.ApiClient, kubeconfig_path: Path, labelled: Labelled, tmp_path: Path
) -> None:
    name = f"shared-{labelled.run}"
    shards = {
        shard: OperatorProcess(
            kubeconfig_path,
            tmp_path,
            name=f"cluster-{shard}",
            extra_args=("--log-format=json", f"--identity=shard-{shard}", *manage),
        ).start(
            f"--namespace-selector={labelled.key}={shard}",
            env={"CERTMINT_NAMESPACE": labelled.system},
        )
        for shard, manage in (("a", ("--manage-cluster-issuers",)), ("b", ()))
    }
    namespaces = {"a": labelled.name("a"), "b": labelled.name("b")}
    custom = client.CustomObjectsApi(kube)
    try:
        wait_until(
            lambda: generated_cluster_cas(kube, labelled.system),
            timeout=60,
            what="the CAs of existing ClusterIssuers generated",
        )
        before = api_server_requests(kube)
        create(
            kube,
            {
                "kind": "ClusterIssuer",
                "metadata": {"name": name},
                "spec": {
                    "ca": {"secretName": f"{name}-ca", "generate": {"commonName": f"{name} root"}},
                    "trustDomain": "test.example",
                },
            },
        )
        for namespace in namespaces.values():
            for index in range(PER_NAMESPACE):
                certificate(
                    kube,
                    namespace,
                    f"cert-{index}",
                    issuerRef={"name": name, "kind": "ClusterIssuer"},
                )
        revisions = {
            namespace: wait_until(
                lambda namespace=namespace: ready_revisions(kube, namespace),
                timeout=60,
                what=f"every Certificate of {namespace} Ready",
            )
            for namespace in namespaces.values()
        }
        writes = api_writes.writes_between(before, api_server_requests(kube))
        issued_logs = {shard: p.log() for shard, p in shards.items()}
        issued = {shard: issuances(log) for shard, log in issued_logs.items()}
        ca_secret = client.CoreV1Api(kube).read_namespaced_secret(f"{name}-ca", labelled.system)
        issuers = {
            f"{namespace}/cert-{index}": client.CoreV1Api(kube)
            .read_namespaced_secret(f"cert-{index}-tls", namespace)
            .metadata.annotations["certmint.io/issuer-name"]
            for namespace in namespaces.values()
            for index in range(PER_NAMESPACE)
        }
        ready = condition(
            custom.get_cluster_custom_object("certmint.io", "v1alpha1", "clusterissuers", name)
        )
    finally:
        for process in shards.values():
            process.stop()
        custom.delete_cluster_custom_object("certmint.io", "v1alpha1", "clusterissuers", name)
        client.CoreV1Api(kube).delete_namespaced_secret(f"{name}-ca", labelled.system)

    assert {
        "revisions": revisions,
        "issuer of every Secret": set(issuers.values()),
        "namespaces each shard issued in": {
            shard: {where.split("/")[0] for _, where, _ in items} for shard, items in issued.items()
        },
        "the CA Secret generated for": ca_secret.metadata.annotations.get(
            "certmint.io/generated-for"
        ),
        "ClusterIssuer Ready": ready.get("status"),
        "CAs generated by shard b": [
            line for line in log_messages(issued_logs["b"]) if "generated root CA" in line
        ],
        # One create per Certificate and one for the CA: the shard that does not manage the
        # ClusterIssuer never tried to generate its CA (a refused create counts too).
        "Secret writes the API server counted": {
            verb: writes.get(f"{verb} secrets", 0) for verb in ("POST", "PUT", "PATCH")
        },
    } == {
        "revisions": {
            namespace: {f"{namespace}/cert-{index}": (1, "1") for index in range(PER_NAMESPACE)}
            for namespace in namespaces.values()
        },
        "issuer of every Secret": {name},
        "namespaces each shard issued in": {shard: {ns} for shard, ns in namespaces.items()},
        "the CA Secret generated for": f"ClusterIssuer/{name}",
        "ClusterIssuer Ready": "True",
        "CAs generated by shard b": [],
        "Secret writes the API server counted": {
            "POST": len(namespaces) * PER_NAMESPACE + 1,
            "PUT": 0,
            "PATCH": 0,
        },
    }
