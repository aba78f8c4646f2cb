"""The re-issue wave (``--wave``): an emergency CA rotation at N Certificates, measured.

After the issuing phase, every Certificate is Ready under the ClusterIssuer ``bench``'s
generated CA. The benchmark then asks for an emergency rotation (``certmint rotate-ca
--emergency bench``: the two annotations that command sets, patched by the benchmark so
the CLI's start-up is not timed), the fastest documented way to activate a new CA. The
operator activates a new CA at once and re-issues every leaf through its renewal token
bucket (``--renewal-rate``, ``--renewal-burst``).

A Certificate counts as re-issued when it is Ready again with ``status.issuerFingerprint``
naming another CA than before (the operator writes it after the new Secret). Afterwards
the benchmark checks the real thing: every revision changed, every fingerprint is the
issuer's new ``status.ca``, and every Secret's leaf verifies against the new root.

Meanwhile a small reader (`UnrelatedReader`) GETs a namespace and LISTs the configmaps of
another one, like any other client of the API server; its latency is measured by the API
server itself (``apiserver_request_duration_seconds``, diffed around the window) and by
the reader's clock, first in a quiet window before the trigger, then during the wave.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from bench import api_writes, cluster, latency, machine, stats, workload
from bench.cluster import GROUP, VERSION, Api
from cryptography import exceptions, x509
from harness.operator_process import OPERATOR_NAMESPACE, OperatorProcess
from kubernetes import client

from certmint.api import resources
from certmint.cli import main as certmint_cli

READ_VERBS = frozenset({"GET", "LIST"})
READ_RESOURCES = frozenset({"configmaps", "namespaces"})
#: ConfigMaps in the reader's namespace: a LIST returns something, as a real one would.
READER_CONFIGMAPS = 20
#: How much longer than N / rate the wave may take before the benchmark gives up, the
#: rate counted as at most `DEADLINE_RATE_CAP` (a busy shared machine issues no faster):
#: a wave that runs out of time is reported as incomplete, with what it re-issued.
DEADLINE_FACTOR, DEADLINE_SLACK_S, DEADLINE_RATE_CAP = 3.0, 180.0, 20.0
#: The wave length this benchmark extrapolates to (issue #18: 100,000 certificates).
EXTRAPOLATE_TO = 100_000


def renewal_bound(operator_args: Sequence[str]) -> tuple[float, int]:
    """The token bucket the operator runs with: (``--renewal-rate``, ``--renewal-burst``).

    Parsed by certmint's own command line, so a default changed there is seen here.
    """
    args = certmint_cli.build_parser().parse_args(["run", *operator_args])
    return float(args.renewal_rate), int(args.renewal_burst)


def reissued_under_another_ca(old_fingerprint: str) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a Certificate is Ready with a leaf from another CA than ``old_fingerprint``."""

    def predicate(body: Mapping[str, Any]) -> bool:
        signer = (body.get("status") or {}).get("issuerFingerprint")
        return cluster.is_ready(body) and signer not in (None, "", old_fingerprint)

    return predicate


def wave_numbers(
    n: int, triggered: float, reissued: Mapping[str, float], rate: float, burst: int
) -> dict[str, Any]:
    """The wave's timing, from the trigger and when each Certificate was seen re-issued.

    Args:
        n: Certificates in the wave.
        triggered: Wall-clock time of the rotation request.
        reissued: Wall-clock time each Certificate was seen re-issued, by name.
        rate: The configured ``--renewal-rate``.
        burst: The configured ``--renewal-burst``.

    Returns:
        ``wave_seconds`` (trigger to the last), ``first_reissue_s`` (trigger to the first:
        activation), ``reissues_per_second`` (first to last: the bucket's pace),
        ``ratio_to_rate_bound``, the bound's own ``bound_seconds`` for N, and the wave
        extrapolated to `EXTRAPOLATE_TO` at the achieved pace.
    """
    if not reissued:
        return {"reissued": 0, "wave_seconds": None, "reissues_per_second": None}
    first, last = min(reissued.values()), max(reissued.values())
    pace = (len(reissued) - 1) / (last - first) if last > first else math.nan
    return {
        "reissued": len(reissued),
        "wave_seconds": round(last - triggered, 2),
        "first_reissue_s": round(first - triggered, 2),
        "reissues_per_second": stats.rounded(pace, 2),
        "ratio_to_rate_bound": stats.rounded(pace / rate, 3),
        "bound_seconds": round(max(0, n - burst) / rate, 1),
        "extrapolated_100k_seconds": stats.rounded(
            (first - triggered) + (EXTRAPOLATE_TO - 1) / pace if pace > 0 else math.nan, 0
        ),
    }


def read_latency(
    client_seconds: Sequence[float], server_buckets: Mapping[float, float], errors: int
) -> dict[str, Any]:
    """A reader window's latency: the API server's histogram p99 and the reader's own."""
    return {
        "reads": len(client_seconds),
        "errors": errors,
        "server_requests": latency.request_count(server_buckets),
        "server_p99_s": _round_or_none(latency.histogram_quantile(0.99, server_buckets)),
        "server_p50_s": _round_or_none(latency.histogram_quantile(0.5, server_buckets)),
        "client_p99_s": (
            round(stats.percentile(client_seconds, 0.99), 4) if client_seconds else None
        ),
        "client_p50_s": (
            round(stats.percentile(client_seconds, 0.5), 4) if client_seconds else None
        ),
    }


def _round_or_none(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


class UnrelatedReader:
    """GETs a namespace and LISTs its configmaps, alternately, every ``interval`` seconds.

    Its own namespace holds `READER_CONFIGMAPS` small ConfigMaps; nothing certmint touches.
    """

    def __init__(self, api: Api, namespace: str, interval: float = 0.1) -> None:
        self.api = api
        self.namespace = namespace
        self.interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.seconds: list[float] = []
        self.errors = 0

    def prepare(self) -> None:
        self.api.create_namespace(self.namespace)
        for index in range(READER_CONFIGMAPS):
            body = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"cm{index:02d}"), data={"key": "x" * 64}
            )
            self.api.core.create_namespaced_config_map(self.namespace, body, _preload_content=False)

    def _read(self, turn: int) -> None:
        if turn % 2:
            self.api.core.list_namespaced_config_map(self.namespace, _preload_content=False)
        else:
            self.api.core.read_namespace(self.namespace, _preload_content=False)

    def _run(self) -> None:
        turn = 0
        while not self._stopping.is_set():
            started = time.perf_counter()
            try:
                self._read(turn)
                self.seconds.append(time.perf_counter() - started)
            except Exception:  # counted and reported; the window goes on
                self.errors += 1
            turn += 1
            self._stopping.wait(self.interval)  # the reader's sampling interval

    def start(self) -> latency.Buckets:
        """Starts reading; returns the API server's histogram as the window opens."""
        self.seconds, self.errors = [], 0
        self._stopping.clear()
        before = latency.duration_buckets(self.api.metrics_text(), READ_VERBS, READ_RESOURCES)
        self._thread = threading.Thread(target=self._run, name="unrelated-reader", daemon=True)
        self._thread.start()
        return before

    def stop(self, before: latency.Buckets) -> dict[str, Any]:
        """Stops reading; the window's latency (`read_latency`) since `start` gave ``before``."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        after = latency.duration_buckets(self.api.metrics_text(), READ_VERBS, READ_RESOURCES)
        buckets = latency.buckets_between(before, after)
        return read_latency(self.seconds, buckets, self.errors)


def quiet_window(reader: UnrelatedReader, seconds: float) -> dict[str, Any]:
    """The reader alone for ``seconds`` (the operator idle): the baseline latency."""
    before = reader.start()
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 1.0))  # the length of the measurement window itself
    return reader.stop(before)


def issuer_ca_fingerprint(api: Api) -> str:
    response = api.custom.get_cluster_custom_object(
        GROUP, VERSION, "clusterissuers", cluster.ISSUER, _preload_content=False
    )
    body: dict[str, Any] = json.loads(response.data)
    return str(((body.get("status") or {}).get("ca") or {}).get("fingerprintSHA256") or "")


def request_emergency_rotation(api: Api) -> None:
    """What ``certmint rotate-ca --emergency bench`` writes: two annotations, one PATCH."""
    annotations = {
        resources.ANNOTATION_ROTATE_REQUEST: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        resources.ANNOTATION_ROTATE_EMERGENCY: "true",
    }
    api.custom.patch_cluster_custom_object(
        GROUP, VERSION, "clusterissuers", cluster.ISSUER,
        {"metadata": {"annotations": annotations}}, _preload_content=False,
    )  # fmt: skip


def leaves_signed_by(root: x509.Certificate, secrets: Iterable[Mapping[str, Any]]) -> int:
    """How many Secrets' ``tls.crt`` leaf verifies as directly issued by ``root``."""
    signed = 0
    for secret in secrets:
        pem = base64.b64decode((secret.get("data") or {}).get("tls.crt", ""))
        try:
            x509.load_pem_x509_certificate(pem).verify_directly_issued_by(root)
        except (ValueError, TypeError, exceptions.InvalidSignature):
            continue
        signed += 1
    return signed


def verify(api: Api, namespace: str, revisions: Mapping[str, Any]) -> dict[str, int]:
    """After the wave: revisions changed, fingerprints and leaves of the issuer's new CA."""
    new_fingerprint = issuer_ca_fingerprint(api)
    items = api.certificates(namespace)
    response = api.core.read_namespaced_secret(
        f"{cluster.ISSUER}-ca", OPERATOR_NAMESPACE, _preload_content=False
    )
    root_pem = base64.b64decode(json.loads(response.data)["data"]["tls.crt"])
    root = x509.load_pem_x509_certificate(root_pem)
    return {
        "revision_changed": sum(
            1
            for item in items
            if (item.get("status") or {}).get("revision") != revisions[item["metadata"]["name"]]
        ),
        "issuer_fingerprint_is_new_ca": sum(
            1
            for item in items
            if (item.get("status") or {}).get("issuerFingerprint") == new_fingerprint
        ),
        "secrets_signed_by_new_root": leaves_signed_by(root, api.secrets(namespace)),
    }


@dataclasses.dataclass
class Wave:
    """The wave of one run: N Ready Certificates in ``namespace``, one operator."""

    api: Api
    operator: OperatorProcess
    namespace: str
    n: int
    control_plane: Mapping[str, int]
    operator_args: Sequence[str]
    quiet_seconds: float = 20.0

    def measure(self) -> dict[str, Any]:
        """Quiet reads, then the trigger, the wave with reads, the checks afterwards."""
        rate, burst = renewal_bound(self.operator_args)
        reader = UnrelatedReader(self.api, f"{self.namespace}-reader")
        reader.prepare()
        api_writes.wait_for_quiet(self.api.request_counts)
        quiet = quiet_window(reader, self.quiet_seconds)
        old_fingerprint = issuer_ca_fingerprint(self.api)
        revisions = {
            item["metadata"]["name"]: (item.get("status") or {}).get("revision")
            for item in self.api.certificates(self.namespace)
        }
        watcher = workload.ReadyWatch(
            self.api, self.namespace, self.n, reissued_under_another_ca(old_fingerprint)
        )
        watcher.start()
        result = self._wave(reader, watcher, rate, burst)
        result["quiet_reads"] = quiet
        result["checks"] = verify(self.api, self.namespace, revisions)
        self.api.empty_namespace(reader.namespace)
        self.api.delete_namespace(reader.namespace)
        return result

    def _wave(
        self, reader: UnrelatedReader, watcher: workload.ReadyWatch, rate: float, burst: int
    ) -> dict[str, Any]:
        pids = {**self.control_plane, "operator": self.operator.pid}
        loadavg_before = [round(v, 2) for v in os.getloadavg()]
        counts_before = self.api.request_counts()
        reads_before = reader.start()
        cpu_before = machine.CpuSnapshot.take(pids)
        triggered = time.time()
        request_emergency_rotation(self.api)
        deadline = self.n / min(rate, DEADLINE_RATE_CAP) * DEADLINE_FACTOR + DEADLINE_SLACK_S
        complete = True
        try:
            watcher.wait(deadline)
        except TimeoutError:
            complete = False
        finally:
            watcher.stop()
            reads = reader.stop(reads_before)
        cpu = cpu_before.until(machine.CpuSnapshot.take(pids))
        loadavg_after = [round(v, 2) for v in os.getloadavg()]
        api_writes.wait_for_quiet(self.api.request_counts)
        own = {("PATCH", "clusterissuers", ""): 1.0}
        writes = api_writes.writes_between(counts_before, self.api.request_counts(), own)
        result: dict[str, Any] = {
            "n": self.n,
            "renewal_rate": rate,
            "renewal_burst": burst,
            "complete": complete,
        }
        result |= wave_numbers(self.n, triggered, watcher.ready, rate, burst)
        issuing = api_writes.issuing_writes(writes)
        result |= {
            "api_writes_per_reissue": round(issuing / max(1, len(watcher.ready)), 3),
            "api_writes": writes,
            "operator_cpu_seconds": cpu["operator"],
            "operator_cpu_ms_per_reissue": round(
                1000 * cpu["operator"] / max(1, len(watcher.ready)), 2
            ),
            "cpu_seconds": cpu,
            "wave_reads": reads,
            "loadavg_at_trigger": loadavg_before,
            "loadavg_at_end": loadavg_after,
        }
        return result
