"""The benchmark's admin client, and the cluster it prepares (CRDs, ClusterIssuer)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench import api_writes
from harness.control_plane import ControlPlane
from harness.operator_process import OPERATOR_NAMESPACE
from kubernetes import client, config

GROUP, VERSION, PLURAL = "certmint.io", "v1alpha1", "certificates"
ISSUER = "bench"
BENCH_LABEL = "bench.certmint.io/run"


class Api:
    """The benchmark's admin client (one urllib3 pool wide enough for its threads)."""

    def __init__(self, kubeconfig: Path, pool_size: int) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = pool_size
        self.client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.client)
        self.custom = client.CustomObjectsApi(self.client)

    def metrics_text(self) -> str:
        """The API server's own ``/metrics`` page."""
        url = f"{self.client.configuration.host}/metrics"
        response = self.client.rest_client.request("GET", url)
        return str(response.read().decode())

    def request_counts(self) -> dict[api_writes.RequestKey, float]:
        return api_writes.request_counts(self.metrics_text())

    def create_namespace(self, name: str, *, label: bool = True) -> None:
        """Creates a namespace; the label marks the benchmark's own for later cleanup."""
        labels = {BENCH_LABEL: "true"} if label else {}
        body = {"metadata": {"name": name, "labels": labels}}
        try:
            self.core.create_namespace(body, _preload_content=False)
        except client.ApiException as err:
            if err.status != 409:
                raise

    def certificates(self, namespace: str) -> list[dict[str, Any]]:
        response = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, _preload_content=False
        )
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
        return items

    def secrets(self, namespace: str) -> list[dict[str, Any]]:
        response = self.core.list_namespaced_secret(namespace, _preload_content=False)
        items: list[dict[str, Any]] = json.loads(response.data)["items"]
        return items

    def empty_namespace(self, namespace: str) -> None:
        """Deletes every Certificate and Secret in a namespace, with collection deletes.

        At 100,000 objects one collection delete outlasts the API server's 60 s request
        timeout (504) and stops where it got to: each is repeated until nothing is left.
        """
        for delete, remaining in (
            (
                lambda: self.custom.delete_collection_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, _preload_content=False
                ),
                lambda: self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, limit=1, _preload_content=False
                ),
            ),
            (
                lambda: self.core.delete_collection_namespaced_secret(
                    namespace, _preload_content=False
                ),
                lambda: self.core.list_namespaced_secret(
                    namespace, limit=1, _preload_content=False
                ),
            ),
        ):
            _delete_until_empty(delete, remaining)

    def delete_namespace(self, namespace: str) -> None:
        """Deletes an emptied namespace, finalizing it ourselves: no controller-manager runs."""
        self.core.delete_namespace(namespace, _preload_content=False)
        body = {"metadata": {"name": namespace}, "spec": {"finalizers": []}}
        self.core.replace_namespace_finalize(namespace, body, _preload_content=False)

    def issuer_ready(self) -> bool:
        try:
            body = self.custom.get_cluster_custom_object(GROUP, VERSION, "clusterissuers", ISSUER)
        except client.ApiException as err:
            if err.status == 404:
                return False
            raise
        return is_ready(body)


def is_ready(body: Mapping[str, Any]) -> bool:
    conditions = (body.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def cluster_issuer_body() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterIssuer",
        "metadata": {"name": ISSUER},
        "spec": {
            "ca": {
                "secretName": f"{ISSUER}-ca",
                "generate": {
                    "commonName": "certmint bench root",
                    "privateKey": {"algorithm": "ECDSA", "size": 256},
                },
            },
            "trustDomain": "cluster.local",
        },
    }


def prepare_cluster(api: Api, plane: ControlPlane) -> None:
    """CRDs installed, the operator namespace there, the ClusterIssuer there, no leftovers."""
    plane.install_crds()
    for namespace in leftover_namespaces(api):
        api.empty_namespace(namespace)
        with contextlib.suppress(client.ApiException):
            api.delete_namespace(namespace)
    api.create_namespace(OPERATOR_NAMESPACE, label=False)
    with contextlib.suppress(client.ApiException):
        api.custom.create_cluster_custom_object(
            GROUP, VERSION, "clusterissuers", cluster_issuer_body(), _preload_content=False
        )


def leftover_namespaces(api: Api) -> list[str]:
    response = api.core.list_namespace(label_selector=BENCH_LABEL, _preload_content=False)
    return [item["metadata"]["name"] for item in json.loads(response.data)["items"]]


#: Collection deletes cut off by the API server's request timeout, at most, per kind.
DELETE_ATTEMPTS = 30


def _delete_until_empty(delete: Callable[[], Any], remaining: Callable[[], Any]) -> None:
    for _ in range(DELETE_ATTEMPTS):
        try:
            delete()
        except client.ApiException as err:
            if err.status != 504:
                raise
        if not json.loads(remaining().data)["items"]:
            return
    raise RuntimeError(f"objects left after {DELETE_ATTEMPTS} collection deletes")
