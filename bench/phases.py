"""The phases of a run: the floor, certmint issuing, the steady state, a restart."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from bench import api_writes, ceiling, cluster, machine, report, workload
from bench.cluster import PLURAL, Api
from harness.operator_process import OperatorProcess
from harness.polling import wait_until

#: What says that a restarted operator has caught up.
CATCH_UP_METRICS = (
    "certmint_cache_synced",
    "certmint_leader",
    "certmint_workqueue_depth",
    "certmint_workqueue_scheduled",
)


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

        cpu_before = machine.CpuSnapshot.take(self.control_plane | {"floor": process.pid})
        created = workload.create_certificates(
            self.api, namespace, self.names(), self.create_concurrency, hand_over
        )
        pipe.close()
        output = json.loads(process.stdout.read())
        process.wait()
        cpu = cpu_before.until(machine.CpuSnapshot.take(self.control_plane))
        api_writes.wait_for_quiet(self.api.request_counts)
        own = {("POST", PLURAL, ""): float(self.n)}
        writes = api_writes.writes_between(counts_before, self.api.request_counts(), own)
        summary = report.phase_summary(self.n, created, output["done"], writes)
        summary["failures"] = len(output["failures"])
        summary["cpu_seconds"] = cpu
        if output["failures"]:
            summary["first_failure"] = next(iter(output["failures"].values()))
        # The operator must never see these.
        self.api.empty_namespace(namespace)
        self.api.delete_namespace(namespace)
        return summary

    def api_ceiling(self) -> dict[str, Any]:
        """Phase 0: the API server's own ceiling for the two writes a Certificate needs.

        N Certificates are created (untimed) in a namespace no operator watches, then
        ``bench/ceiling.py`` writes their Secrets and Ready statuses from prepared bodies.
        """
        namespace = f"bench-ceiling-{self.run_id}"
        self.api.create_namespace(namespace)
        workload.create_certificates(self.api, namespace, self.names(), self.create_concurrency)
        api_writes.wait_for_quiet(self.api.request_counts)
        counts_before = self.api.request_counts()
        cpu_before = machine.CpuSnapshot.take(self.control_plane)
        result = dict(ceiling.run(str(self.kubeconfig), namespace, self.names()))
        result["cpu_seconds"] = cpu_before.until(machine.CpuSnapshot.take(self.control_plane))
        api_writes.wait_for_quiet(self.api.request_counts)
        writes = api_writes.writes_between(counts_before, self.api.request_counts())
        result["api_writes_per_cert"] = round(api_writes.issuing_writes(writes) / self.n, 3)
        self.api.empty_namespace(namespace)
        self.api.delete_namespace(namespace)
        return result

    def scrape_cost(self, operator: OperatorProcess) -> float:
        """Operator CPU seconds spent on one full scrape of ``/metrics``."""
        before = machine.process_cpu_seconds(operator.pid)
        status, _ = operator.get("/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return round(machine.process_cpu_seconds(operator.pid) - before, 3)

    def operator_phase(self, operator: OperatorProcess, namespace: str) -> dict[str, Any]:
        """Phase 2: certmint issues N new Certificates as they are created."""
        operator.start(timeout=60)
        wait_until(self.api.issuer_ready, timeout=120, what=f"ClusterIssuer {cluster.ISSUER} Ready")
        wait_until(
            lambda: operator.metric_values("certmint_leader").get("certmint_leader") == 1.0,
            timeout=60,
            what="operator leadership",
        )
        api_writes.wait_for_quiet(self.api.request_counts)
        self.api.create_namespace(namespace)
        watcher = workload.ReadyWatch(self.api, namespace, self.n)
        watcher.start()
        pids = self.control_plane | {"operator": operator.pid}
        counts_before = self.api.request_counts()
        cpu_before = machine.CpuSnapshot.take(pids)
        with machine.sampling_profiler(self.py_spy, "issue", operator.pid):
            created = workload.create_certificates(
                self.api, namespace, self.names(), self.create_concurrency
            )
            watcher.wait(self.deadline())
        cpu = cpu_before.until(machine.CpuSnapshot.take(pids))
        api_writes.wait_for_quiet(self.api.request_counts)
        own = {("POST", PLURAL, ""): float(self.n)}
        writes = api_writes.writes_between(counts_before, self.api.request_counts(), own)
        summary = report.phase_summary(self.n, created, watcher.ready, writes)
        summary["cpu_seconds"] = cpu
        summary["operator_cpu_seconds"] = cpu["operator"]
        summary["operator_peak_rss_mb"] = round(machine.process_memory_mb(operator.pid), 1)
        summary["scrape_cpu_seconds"] = self.scrape_cost(operator)
        return summary

    def steady(
        self, operator: OperatorProcess, seconds: float, scrape_every: float
    ) -> dict[str, Any]:
        """Phase 3: nothing changes; what does the operator still write and burn?

        Like Prometheus, the benchmark scrapes ``/metrics`` every ``scrape_every``
        seconds (0: never): per-Certificate series are computed at scrape time, so a
        scrape is the one thing a quiet operator still does.
        """
        pids = self.control_plane | {"operator": operator.pid}
        counts_before = self.api.request_counts()
        cpu_before = machine.CpuSnapshot.take(pids)
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
        cpu = cpu_before.until(machine.CpuSnapshot.take(pids))
        writes = api_writes.writes_between(counts_before, self.api.request_counts())
        issuing = api_writes.issuing_writes(writes)
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

    def restart(self, operator: OperatorProcess, namespace: str) -> dict[str, Any]:
        """Phase 4: stop and start the operator; time to catch up, re-issues, writes."""
        revisions = _revisions(self.api.certificates(namespace))
        operator.stop()
        counts_before = self.api.request_counts()
        started = time.time()
        operator.start(wait_healthy=False)  # the catch-up below is what is measured
        pids = self.control_plane | {"operator": operator.pid}
        cpu_before = machine.CpuSnapshot.take(pids)
        expected = len(revisions)
        profiler = contextlib.ExitStack()
        profiler.enter_context(machine.sampling_profiler(self.py_spy, "restart", operator.pid))

        def caught_up() -> bool:
            values = operator.metric_values(*CATCH_UP_METRICS)
            return (
                values.get("certmint_cache_synced") == 1.0
                and values.get("certmint_leader") == 1.0
                and values.get('certmint_workqueue_depth{queue="certificates"}') == 0.0
                and values.get('certmint_workqueue_scheduled{queue="certificates"}', 0.0)
                >= expected
            )

        with profiler:
            wait_until(
                caught_up,
                timeout=self.deadline(),
                what="operator caught up after restart",
                every=0.5,
            )
        seconds = time.time() - started
        cpu = cpu_before.until(machine.CpuSnapshot.take(pids))
        api_writes.wait_for_quiet(self.api.request_counts)
        writes = api_writes.writes_between(counts_before, self.api.request_counts())
        after = _revisions(self.api.certificates(namespace))
        return {
            "seconds_to_caught_up": round(seconds, 2),
            "reissues": sum(1 for name, rev in after.items() if revisions.get(name) != rev),
            "api_writes": writes,
            "issuing_writes": api_writes.issuing_writes(writes),
            "peak_rss_mb": round(machine.process_memory_mb(operator.pid), 1),
            "cpu_seconds": cpu,
        }


def _revisions(items: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {item["metadata"]["name"]: (item.get("status") or {}).get("revision") for item in items}
