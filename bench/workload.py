"""The Certificates a phase creates, and the watch that sees each turn Ready."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench import cluster
from bench.cluster import GROUP, ISSUER, PLURAL, VERSION
from kubernetes import watch


def names(count: int) -> list[str]:
    """The Certificates' names in a phase: c00000, c00001, ..."""
    return [f"c{i:05d}" for i in range(count)]


def certificate_body(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Certificate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretName": f"{name}-tls",
            "issuerRef": {"name": ISSUER, "kind": "ClusterIssuer"},
            "dnsNames": [f"{name}.{namespace}.svc"],
            "privateKey": {"algorithm": "ECDSA", "size": 256},
        },
    }


def create_certificates(
    api: cluster.Api,
    namespace: str,
    names: Sequence[str],
    concurrency: int,
    on_created: Callable[[str], None] = lambda _: None,
) -> dict[str, float]:
    """Creates the Certificates as fast as the API accepts them.

    Returns:
        When each create request was sent (wall clock), by name.
    """
    sent: dict[str, float] = {}

    def create(name: str) -> None:
        sent[name] = time.time()
        api.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, certificate_body(namespace, name),
            _preload_content=False,
        )  # fmt: skip
        on_created(name)

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(create, name) for name in names]:
            future.result()
    return sent


class ReadyWatch:
    """Notes the wall-clock time at which each Certificate of a namespace turns Ready.

    ``arrived`` says what "Ready" means (by default the Ready condition; the re-issue wave
    asks for Ready under another CA).
    """

    def __init__(
        self,
        api: cluster.Api,
        namespace: str,
        expected: int,
        arrived: Callable[[Mapping[str, Any]], bool] = cluster.is_ready,
    ) -> None:
        self.api = api
        self.arrived = arrived
        self.namespace = namespace
        self.expected = expected
        self.ready: dict[str, float] = {}
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ready-watch", daemon=True)

    def start(self) -> None:
        self._started = threading.Event()
        self._thread.start()
        self._started.wait(30)

    def stop(self) -> None:
        self._stopping.set()

    def _note(self, body: Mapping[str, Any], when: float) -> None:
        name = str((body.get("metadata") or {}).get("name", ""))
        if name not in self.ready and self.arrived(body):
            self.ready[name] = when
            if len(self.ready) >= self.expected:
                self.done.set()

    def _run(self) -> None:
        try:
            while not self.done.is_set() and not self._stopping.is_set():
                response = self.api.custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, _preload_content=False
                )
                listing = json.loads(response.data)
                now = time.time()
                for item in listing["items"]:
                    self._note(item, now)
                self._started.set()
                self._stream(listing["metadata"]["resourceVersion"])
        except BaseException as err:
            self.error = err
            self.done.set()

    def _stream(self, resource_version: str) -> None:
        """Follows the watch until it ends (then the caller lists again)."""
        stream = watch.Watch()
        for event in stream.stream(
            self.api.custom.list_namespaced_custom_object,
            GROUP, VERSION, self.namespace, PLURAL,
            resource_version=resource_version, timeout_seconds=300,
        ):  # fmt: skip
            if event["type"] == "ERROR":
                return  # e.g. 410 Gone: list again
            self._note(event["object"], time.time())
            if self.done.is_set() or self._stopping.is_set():
                stream.stop()
                return

    def wait(self, timeout: float) -> None:
        if not self.done.wait(timeout):
            raise TimeoutError(
                f"{len(self.ready)} of {self.expected} Certificates Ready after {timeout:.0f}s"
            )
        if self.error is not None:
            raise RuntimeError(f"watching Certificates failed: {self.error!r}")
