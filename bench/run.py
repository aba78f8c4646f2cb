"""``make bench``: N Certificates issued by certmint, measured against this machine's floor.

Everything runs against a real local control plane (etcd + kube-apiserver):

1. **Floor.** N Certificates are created in a fresh namespace while no operator runs;
   ``bench/floor.py`` (a separate process) receives each name as soon as its create
   returns and issues it with the least possible work. Afterwards those Certificates and
   Secrets are deleted with two collection deletes, so the operator never sees them.
2. **certmint.** ``certmint run -A`` starts as a separate process, generates the
   ClusterIssuer's CA and settles. Then N Certificates are created in another fresh
   namespace, in the same way and at the same pace; a watch notes when each turns Ready.
3. **Steady state** (``--steady-seconds``): nothing changes; API writes and operator CPU
   are counted over a window.
4. **Restart** (``--restart``): the operator is stopped (SIGTERM) and started again; the
   time until it has caught up (cache synced, every Certificate reconciled, queue empty)
   is measured, with the re-issues (revision changes) and API writes it made.

API writes are counted by the API server itself (``apiserver_request_total``, verbs
POST/PUT/PATCH/DELETE, diffed around each phase); the benchmark's own Certificate
creates are left out. CPU comes from ``/proc`` for every process involved, so the noise
from other work on the machine is reported as ``others`` CPU seconds.

Run: ``make bench N=1000`` or ``python bench/run.py --n 1000 --kubeconfig K``; the table
goes to stdout and the numbers to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import json
import math
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from kubernetes import client, config, watch
from prometheus_client import parser as prometheus_parser

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).with_name("results.json")
GROUP, VERSION, PLURAL = "certmint.io", "v1alpha1", "certificates"
ISSUER = "bench"
OPERATOR_NAMESPACE = "certmint-system"
BENCH_LABEL = "bench.certmint.io/run"
MUTATING_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})
#: Writes that are not part of issuing: Lease renewals (certmint's leader election and
#: the API server's own heartbeat) and the API server's reconciliation of its endpoints.
BACKGROUND_RESOURCES = frozenset({"leases", "endpoints", "endpointslices"})
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

#: What says that a restarted operator has caught up.
CATCH_UP_METRICS = (
    "certmint_cache_synced",
    "certmint_leader",
    "certmint_workqueue_depth",
    "certmint_workqueue_scheduled",
)
#: (verb, resource, subresource) as the API server labels its request counter.
RequestKey = tuple[str, str, str]


# Pure helpers ---------------------------------------------------------------------------
def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` by linear interpolation (numpy's default).

    Raises:
        ValueError: ``values`` is empty or ``fraction`` is outside [0, 1].
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction {fraction} is outside [0, 1]")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def request_counts(metrics_text: str) -> dict[RequestKey, float]:
    """Sums ``apiserver_request_total`` by (verb, resource, subresource).

    Args:
        metrics_text: The API server's ``/metrics`` page (Prometheus text format).

    Returns:
        The counters, summed over every other label (code, group, scope, version...).
    """
    lines = "\n".join(
        line for line in metrics_text.splitlines() if line.startswith("apiserver_request_total{")
    )
    counts: dict[RequestKey, float] = {}
    for family in prometheus_parser.text_string_to_metric_families(lines + "\n"):
        for sample in family.samples:
            labels = sample.labels
            key = (
                labels.get("verb", ""),
                labels.get("resource", ""),
                labels.get("subresource", ""),
            )
            counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def writes_between(
    before: Mapping[RequestKey, float],
    after: Mapping[RequestKey, float],
    own: Mapping[RequestKey, float] | None = None,
) -> dict[str, int]:
    """Mutating requests made between two scrapes, by ``"VERB resource[/subresource]"``.

    Args:
        before: `request_counts` at the start.
        after: `request_counts` at the end.
        own: Requests the benchmark made itself, subtracted (e.g. its Certificate creates).

    Returns:
        Only the non-zero entries, sorted by name.
    """
    writes: dict[str, int] = {}
    for key, value in after.items():
        verb, resource_name, subresource = key
        if verb not in MUTATING_VERBS:
            continue
        made = round(value - before.get(key, 0.0) - (own or {}).get(key, 0.0))
        if made:
            name = f"{verb} {resource_name}" + (f"/{subresource}" if subresource else "")
            writes[name] = made
    return dict(sorted(writes.items()))


def issuing_writes(writes: Mapping[str, int]) -> int:
    """The writes that are part of issuing: all but the background (`BACKGROUND_RESOURCES`)."""
    return sum(
        count
        for name, count in writes.items()
        if name.split(" ", 1)[1].split("/", 1)[0] not in BACKGROUND_RESOURCES
    )


def cpu_seconds_of_stat(stat_text: str, ticks: int = CLOCK_TICKS) -> float:
    """utime + stime of a process, in seconds, from the text of ``/proc/<pid>/stat``."""
    fields = stat_text.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat(5)); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / ticks


def status_kilobytes(status_text: str, field: str) -> int:
    """A ``kB`` field (``VmHWM``, ``VmRSS``) of ``/proc/<pid>/status``; 0 when absent."""
    for line in status_text.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    return 0


def machine_busy_seconds(proc_stat_text: str, ticks: int = CLOCK_TICKS) -> float:
    """CPU seconds all cores spent not idle, from the ``cpu`` line of ``/proc/stat``."""
    first = proc_stat_text.splitlines()[0].split()
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    # guest time is already included in user time (proc(5)).
    return (sum(values[:8]) - idle) / ticks


def latencies(created: Mapping[str, float], ready: Mapping[str, float]) -> list[float]:
    """Seconds from each create request to Ready, for the names that became Ready."""
    return [ready[name] - created[name] for name in created if name in ready]


def throughput(created: Mapping[str, float], ready: Mapping[str, float]) -> tuple[float, float]:
    """(seconds from the first create to the last Ready, Ready certificates per second)."""
    if not ready or not created:
        return (math.nan, 0.0)
    seconds = max(ready.values()) - min(created.values())
    return seconds, len(ready) / seconds if seconds > 0 else math.nan


def rounded(value: float, digits: int = 3) -> float | None:
    """A JSON-friendly number: NaN becomes None."""
    return None if math.isnan(value) else round(value, digits)


def phase_summary(
    n: int,
    created: Mapping[str, float],
    ready: Mapping[str, float],
    writes: Mapping[str, int],
) -> dict[str, Any]:
    """The headline numbers of one issuing phase (operator or floor)."""
    seconds, rate = throughput(created, ready)
    waited = latencies(created, ready)
    writes_per_cert = issuing_writes(writes) / len(ready) if ready else math.nan
    return {
        "n": n,
        "ready": len(ready),
        "seconds_to_all_ready": rounded(seconds),
        "certs_per_second": rounded(rate, 1),
        "p50_latency_s": rounded(percentile(waited, 0.5)) if waited else None,
        "p99_latency_s": rounded(percentile(waited, 0.99)) if waited else None,
        "api_writes_per_cert": rounded(writes_per_cert, 3),
        "api_writes": dict(writes),
    }


def results_document(
    operator: Mapping[str, Any],
    floor: Mapping[str, Any] | None,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """``bench/results.json``: the operator's phase, the floor and the ratio between them."""
    document: dict[str, Any] = {
        key: operator[key]
        for key in (
            "n",
            "ready",
            "seconds_to_all_ready",
            "certs_per_second",
            "p50_latency_s",
            "p99_latency_s",
            "api_writes_per_cert",
        )
    }
    document |= {
        "operator_peak_rss_mb": extra.get("operator_peak_rss_mb"),
        "operator_cpu_seconds": extra.get("operator_cpu_seconds"),
        "floor_certs_per_second": floor["certs_per_second"] if floor else None,
        "ratio_to_floor": (
            round(operator["certs_per_second"] / floor["certs_per_second"], 3)
            if floor and floor["certs_per_second"] and operator["certs_per_second"]
            else None
        ),
        "api_writes": operator["api_writes"],
        "floor": dict(floor) if floor else None,
    }
    document |= {key: value for key, value in extra.items() if key not in document}
    return document


def table(results: Mapping[str, Any]) -> str:
    """The results as an aligned two-column text table."""
    rows: list[tuple[str, Any]] = [
        ("certificates (N)", results["n"]),
        ("ready", results["ready"]),
        ("seconds to all Ready", results["seconds_to_all_ready"]),
        ("certificates / second", results["certs_per_second"]),
        ("floor certificates / second", results["floor_certs_per_second"]),
        ("ratio to floor", results["ratio_to_floor"]),
        ("p50 latency create->Ready (s)", results["p50_latency_s"]),
        ("p99 latency create->Ready (s)", results["p99_latency_s"]),
        ("API writes / certificate", results["api_writes_per_cert"]),
        ("operator peak RSS (MB)", results["operator_peak_rss_mb"]),
        ("operator CPU seconds", results["operator_cpu_seconds"]),
    ]
    floor = results.get("floor")
    if floor:
        rows.append(("floor API writes / certificate", floor["api_writes_per_cert"]))
    steady = results.get("steady")
    if steady:
        rows += [
            ("steady: API writes", steady["issuing_writes"]),
            ("steady: background writes (Leases)", steady["background_writes"]),
            ("steady: operator CPU (% of a core)", steady["operator_cpu_percent"]),
            ("steady: slowest /metrics scrape (s)", steady["scrape_seconds_max"]),
        ]
    restart = results.get("restart")
    if restart:
        rows += [
            ("restart: seconds to caught up", restart["seconds_to_caught_up"]),
            ("restart: re-issues", restart["reissues"]),
            ("restart: API writes", restart["issuing_writes"]),
            ("restart: peak RSS (MB)", restart["peak_rss_mb"]),
        ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


# Processes and the machine -------------------------------------------------------------
def process_cpu_seconds(pid: int) -> float:
    try:
        return cpu_seconds_of_stat(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return 0.0


def process_memory_mb(pid: int, field: str = "VmHWM") -> float:
    try:
        return status_kilobytes(Path(f"/proc/{pid}/status").read_text(), field) / 1024
    except OSError:
        return 0.0


def _self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclasses.dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds used so far by the machine and by each process we know."""

    wall: float
    machine: float
    processes: Mapping[str, float]

    @staticmethod
    def take(pids: Mapping[str, int]) -> CpuSnapshot:
        processes = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        processes["bench"] = _self_cpu_seconds()
        processes["finished children"] = _children_cpu_seconds()
        return CpuSnapshot(
            time.time(), machine_busy_seconds(Path("/proc/stat").read_text()), processes
        )

    def until(self, later: CpuSnapshot) -> dict[str, float]:
        """CPU seconds per process between two snapshots, with ``others`` (the noise)."""
        used = {
            name: later.processes.get(name, 0.0) - self.processes.get(name, 0.0)
            for name in later.processes
        }
        busy = later.machine - self.machine
        used = {name: round(value, 2) for name, value in used.items()}
        used["others"] = round(busy - sum(used.values()), 2)
        used["machine busy"] = round(busy, 2)
        used["wall"] = round(later.wall - self.wall, 2)
        return used


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "loadavg_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.2) -> None:
    """Polls ``check`` until it holds; raises TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f}s")
        time.sleep(every)  # polling a condition, with a deadline


def metric_values(text: str, names: Iterable[str]) -> dict[str, float]:
    """The samples of the metrics ``names`` on a metrics page, by their sample text.

    A plain line scan, not a full parse: at 10,000 Certificates the page has 50,000
    lines, and the benchmark must not steal the CPU it is measuring.

    Returns:
        ``{'name{label="value"}': value}`` (``'name'`` when unlabelled), as exposed.
    """
    prefixes = tuple(f"{name}{{" for name in names) + tuple(f"{name} " for name in names)
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(prefixes):
            sample, _, value = line.rpartition(" ")
            values[sample] = float(value)
    return values


class Operator:
    """``certmint run -A`` as a separate process."""

    def __init__(
        self,
        kubeconfig: Path,
        log_dir: Path,
        workers: int,
        profile: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.workers = workers
        self.profile = profile
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.port = free_port()
        self.starts += 1
        command = [
            "--kubeconfig",
            str(self.kubeconfig),
            "run",
            "-A",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.port}",
            f"--workers={self.workers}",
            *self.extra_args,
        ]
        if self.profile is not None:
            renderer = "html" if self.profile.suffix == ".html" else "text"
            path = self.profile.with_stem(f"{self.profile.stem}-{self.starts}")
            argv = [
                str(BIN / "python"), "-m", "pyinstrument", "-r", renderer, "-o", str(path),
                "-m", "certmint", *command,
            ]  # fmt: skip
        else:
            argv = [str(BIN / "certmint"), *command]
        log = (self.log_dir / f"operator-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "CERTMINT_NAMESPACE": OPERATOR_NAMESPACE},
        )

    def get(self, path: str) -> tuple[int, str]:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"the operator exited; see {self.log_dir}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{path}", timeout=10
            ) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as err:
            return int(err.code), ""
        except OSError:
            return 0, ""

    def metrics(self, *names: str) -> dict[str, float]:
        """Only the metrics named, which spares the operator rendering its whole page."""
        query = urllib.parse.urlencode([("name[]", name) for name in names])
        status, text = self.get(f"/metrics?{query}")
        return metric_values(text, names) if status == 200 else {}

    def healthy(self) -> bool:
        return self.get("/healthz")[0] == 200

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# The API ------------------------------------------------------------------------------
class Api:
    """The benchmark's admin client (one urllib3 pool wide enough for its threads)."""

    def __init__(self, kubeconfig: Path, pool_size: int) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = pool_size
        self.client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.client)
        self.custom = client.CustomObjectsApi(self.client)

    def request_counts(self) -> dict[RequestKey, float]:
        url = f"{self.client.configuration.host}/metrics"
        response = self.client.rest_client.request("GET", url)
        return request_counts(response.read().decode())

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

    def empty_namespace(self, namespace: str) -> None:
        """Deletes every Certificate and Secret in a namespace: two requests."""
        self.custom.delete_collection_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, _preload_content=False
        )
        self.core.delete_collection_namespaced_secret(namespace, _preload_content=False)

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


def create_certificates(
    api: Api,
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
    """Notes the wall-clock time at which each Certificate of a namespace turns Ready."""

    def __init__(self, api: Api, namespace: str, expected: int) -> None:
        self.api = api
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
        if name not in self.ready and is_ready(body):
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


def wait_for_quiet(api: Api, timeout: float = 60.0, interval: float = 1.0) -> None:
    """Waits until no issuing write happened between two scrapes (Events post late)."""
    deadline = time.monotonic() + timeout
    previous = issuing_writes(writes_between({}, api.request_counts()))
    while time.monotonic() < deadline:
        time.sleep(interval)  # the sampling interval of a quiescence check
        current = issuing_writes(writes_between({}, api.request_counts()))
        if current == previous:
            return
        previous = current


# Phases --------------------------------------------------------------------------------
@dataclasses.dataclass
class Bench:
    """One benchmark run."""

    api: Api
    kubeconfig: Path
    n: int
    workers: int
    create_concurrency: int
    log_dir: Path
    control_plane: Mapping[str, int]
    py_spy: Path | None = None
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:6])

    def names(self) -> list[str]:
        return [f"c{i:05d}" for i in range(self.n)]

    def deadline(self) -> float:
        return max(180.0, self.n * 0.5)

    def floor(self) -> dict[str, Any]:
        """Phase 1: the minimal baseline, on its own namespace, with no operator running."""
        namespace = f"bench-floor-{self.run_id}"
        self.api.create_namespace(namespace)
        counts_before = self.api.request_counts()
        process = subprocess.Popen(
            [
                sys.executable, str(Path(__file__).with_name("floor.py")),
                "--kubeconfig", str(self.kubeconfig), "--namespace", namespace,
                "--workers", str(self.workers),
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert process.stdin is not None
        assert process.stdout is not None
        pipe: IO[bytes] = process.stdin
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError("bench/floor.py did not start")
        lock = threading.Lock()

        def hand_over(name: str) -> None:
            with lock:
                pipe.write(f"{name}\n".encode())
                pipe.flush()

        cpu_before = CpuSnapshot.take(self.control_plane | {"floor": process.pid})
        created = create_certificates(
            self.api, namespace, self.names(), self.create_concurrency, hand_over
        )
        pipe.close()
        output = json.loads(process.stdout.read())
        process.wait()
        cpu = cpu_before.until(CpuSnapshot.take(self.control_plane))
        wait_for_quiet(self.api)
        own = {("POST", PLURAL, ""): float(self.n)}
        writes = writes_between(counts_before, self.api.request_counts(), own)
        summary = phase_summary(self.n, created, output["done"], writes)
        summary["failures"] = len(output["failures"])
        summary["cpu_seconds"] = cpu
        if output["failures"]:
            summary["first_failure"] = next(iter(output["failures"].values()))
        # The operator must never see these.
        self.api.empty_namespace(namespace)
        self.api.delete_namespace(namespace)
        return summary

    def start_operator(self, operator: Operator) -> None:
        operator.start()
        wait_until(operator.healthy, 60, "operator /healthz")

    def operator_phase(self, operator: Operator, namespace: str) -> dict[str, Any]:
        """Phase 2: certmint issues N new Certificates as they are created."""
        self.start_operator(operator)
        wait_until(self.api.issuer_ready, 120, f"ClusterIssuer {ISSUER} Ready")
        wait_until(
            lambda: operator.metrics("certmint_leader").get("certmint_leader") == 1.0,
            60,
            "operator leadership",
        )
        wait_for_quiet(self.api)
        self.api.create_namespace(namespace)
        watcher = ReadyWatch(self.api, namespace, self.n)
        watcher.start()
        pids = self.control_plane | {"operator": operator.pid}
        counts_before = self.api.request_counts()
        cpu_before = CpuSnapshot.take(pids)
        with sampling_profiler(self.py_spy, "issue", operator.pid):
            created = create_certificates(
                self.api, namespace, self.names(), self.create_concurrency
            )
            watcher.wait(self.deadline())
        cpu = cpu_before.until(CpuSnapshot.take(pids))
        wait_for_quiet(self.api)
        own = {("POST", PLURAL, ""): float(self.n)}
        writes = writes_between(counts_before, self.api.request_counts(), own)
        summary = phase_summary(self.n, created, watcher.ready, writes)
        summary["cpu_seconds"] = cpu
        summary["operator_cpu_seconds"] = cpu["operator"]
        summary["operator_peak_rss_mb"] = round(process_memory_mb(operator.pid), 1)
        return summary

    def steady(self, operator: Operator, seconds: float, scrape_every: float) -> dict[str, Any]:
        """Phase 3: nothing changes; what does the operator still write and burn?

        Like Prometheus, the benchmark scrapes ``/metrics`` every ``scrape_every``
        seconds (0: never): per-Certificate series are computed at scrape time, so a
        scrape is the one thing a quiet operator still does.
        """
        pids = self.control_plane | {"operator": operator.pid}
        counts_before = self.api.request_counts()
        cpu_before = CpuSnapshot.take(pids)
        end = time.monotonic() + seconds
        scrapes: list[float] = []
        while (left := end - time.monotonic()) > 0:
            if scrape_every <= 0 or left < scrape_every:
                time.sleep(left)  # the rest of the measurement window
                break
            time.sleep(scrape_every)  # the scrape interval
            started = time.monotonic()
            status, text = operator.get("/metrics")
            scrapes.append(time.monotonic() - started)
            if status != 200:
                raise RuntimeError(f"/metrics answered {status}")
        cpu = cpu_before.until(CpuSnapshot.take(pids))
        writes = writes_between(counts_before, self.api.request_counts())
        issuing = issuing_writes(writes)
        return {
            "seconds": seconds,
            "api_writes": writes,
            "issuing_writes": issuing,
            "background_writes": sum(writes.values()) - issuing,
            "operator_cpu_percent": round(100 * cpu["operator"] / seconds, 2),
            "scrapes": len(scrapes),
            "scrape_seconds_max": round(max(scrapes), 3) if scrapes else None,
            "metrics_page_lines": len(text.splitlines()) if scrapes else None,
            "cpu_seconds": cpu,
        }

    def restart(self, operator: Operator, namespace: str) -> dict[str, Any]:
        """Phase 4: stop and start the operator; time to catch up, re-issues, writes."""
        revisions = _revisions(self.api.certificates(namespace))
        operator.stop()
        counts_before = self.api.request_counts()
        started = time.time()
        operator.start()
        pids = self.control_plane | {"operator": operator.pid}
        cpu_before = CpuSnapshot.take(pids)
        expected = len(revisions)
        profiler = contextlib.ExitStack()
        profiler.enter_context(sampling_profiler(self.py_spy, "restart", operator.pid))

        def caught_up() -> bool:
            values = operator.metrics(*CATCH_UP_METRICS)
            return (
                values.get("certmint_cache_synced") == 1.0
                and values.get("certmint_leader") == 1.0
                and values.get('certmint_workqueue_depth{queue="certificates"}') == 0.0
                and values.get('certmint_workqueue_scheduled{queue="certificates"}', 0.0)
                >= expected
            )

        with profiler:
            wait_until(caught_up, self.deadline(), "operator caught up after restart", every=0.5)
        seconds = time.time() - started
        cpu = cpu_before.until(CpuSnapshot.take(pids))
        wait_for_quiet(self.api)
        writes = writes_between(counts_before, self.api.request_counts())
        after = _revisions(self.api.certificates(namespace))
        return {
            "seconds_to_caught_up": round(seconds, 2),
            "reissues": sum(1 for name, rev in after.items() if revisions.get(name) != rev),
            "api_writes": writes,
            "issuing_writes": issuing_writes(writes),
            "peak_rss_mb": round(process_memory_mb(operator.pid), 1),
            "cpu_seconds": cpu,
        }


@contextlib.contextmanager
def sampling_profiler(output: Path | None, phase: str, pid: int) -> Iterator[None]:
    """Samples ``pid`` with py-spy while it holds the GIL, into ``<output>-<phase>``.

    Collapsed stacks, or speedscope for a ``.json`` output. py-spy costs CPU on a
    machine this small: never compare timings of a profiled run with unprofiled ones.
    """
    if output is None:
        yield
        return
    kind = "speedscope" if output.suffix == ".json" else "raw"
    path = output.with_stem(f"{output.stem}-{phase}")
    spy = subprocess.Popen(
        [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", "100", "--format", kind,
         "--output", str(path), "--gil"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def _revisions(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {item["metadata"]["name"]: (item.get("status") or {}).get("revision") for item in items}


def control_plane_pids(kubeconfig: Path) -> dict[str, int]:
    """The etcd and kube-apiserver pids that ``hack/cluster.py`` recorded, if any."""
    try:
        state = json.loads((kubeconfig.parent / "cluster.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(name): int(pid) for name, pid in state.get("pids", {}).items()}


def prepare_cluster(api: Api, kubeconfig: Path) -> None:
    """CRDs installed, the operator namespace there, the ClusterIssuer there, no leftovers."""
    kubectl = [str(BIN / "kubectl"), f"--kubeconfig={kubeconfig}"]
    crds = str(ROOT / "crds")
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f", crds],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "--timeout=60s", "-f", crds],
        check=True, capture_output=True,
    )  # fmt: skip
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    kubeconfig = Path(args.kubeconfig).resolve()
    api = Api(kubeconfig, pool_size=max(args.create_concurrency, 8) + 4)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="certmint-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        api=api,
        kubeconfig=kubeconfig,
        n=args.n,
        workers=args.workers,
        create_concurrency=args.create_concurrency,
        log_dir=log_dir,
        control_plane=control_plane_pids(kubeconfig),
        py_spy=args.py_spy,
    )
    info = machine_info()
    print(f"certmint bench: N={args.n}, logs in {log_dir}", file=sys.stderr)
    prepare_cluster(api, kubeconfig)
    floor = None
    if not args.skip_floor:
        print("floor: issuing with the minimal script ...", file=sys.stderr)
        floor = bench.floor()
    operator = Operator(
        kubeconfig, log_dir, args.workers, args.profile, extra_args=args.operator_arg
    )
    namespace = f"bench-op-{bench.run_id}"
    extra: dict[str, Any] = {}
    try:
        print("certmint: issuing ...", file=sys.stderr)
        phase = bench.operator_phase(operator, namespace)
        extra["operator_peak_rss_mb"] = phase.pop("operator_peak_rss_mb")
        extra["operator_cpu_seconds"] = phase.pop("operator_cpu_seconds")
        extra["cpu_seconds"] = phase.pop("cpu_seconds")
        if args.steady_seconds > 0:
            print(f"steady state: {args.steady_seconds:.0f}s ...", file=sys.stderr)
            extra["steady"] = bench.steady(operator, args.steady_seconds, args.scrape_every)
        if args.restart:
            print("restart ...", file=sys.stderr)
            extra["restart"] = bench.restart(operator, namespace)
    finally:
        operator.stop()
        if not args.keep:
            with contextlib.suppress(client.ApiException):
                api.empty_namespace(namespace)
                api.delete_namespace(namespace)
    info["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    extra["machine"] = info
    extra["workers"] = args.workers
    extra["create_concurrency"] = args.create_concurrency
    extra["noise"] = (
        "other engineers share this machine: cpu_seconds.others is CPU used by processes "
        "outside the benchmark during the phase; compare runs only when it is small"
    )
    return results_document(phase, floor, extra)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=1000, help="Certificates per phase")
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig")
    parser.add_argument("--workers", type=int, default=16, help="operator --workers and floor")
    parser.add_argument("--create-concurrency", type=int, default=16)
    parser.add_argument("--steady-seconds", type=float, default=30.0, help="0 to skip")
    parser.add_argument(
        "--scrape-every", type=float, default=15.0, help="steady state: /metrics scrape interval"
    )
    parser.add_argument("--restart", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the Certificates in place")
    parser.add_argument("--profile", type=Path, help="run the operator under pyinstrument")
    parser.add_argument(
        "--py-spy", type=Path, help="sample the operator while it issues (collapsed stacks)"
    )
    parser.add_argument(
        "--operator-arg", action="append", default=[], help="extra `certmint run` argument"
    )
    parser.add_argument("--log-dir", help="where operator logs go (default: a temp dir)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
