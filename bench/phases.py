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
#: How long a phase whose script reported failures still waits for the rest to turn Ready.
FAILED_PHASE_GRACE_SECONDS = 30.0


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
    #: Leave each phase's Certificates and Secrets in place (``--keep``).
    keep: bool = False
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:6])

    def names(self) -> list[str]:
        return workload.names(self.n)

    def deadline(self) -> float:
        return max(180.0, self.n * 0.5)

    def floor(self) -> dict[str, Any]:
        """Phase 1: the minimal baseline, on its own namespace, with no operator running."""
        namespace = f"bench-floor-{self.run_id}"
        self.api.create_namespace(namespace)
        script = [str(Path(__file__).with_name("floor.py")), "--workers", str(self.workers)]
        summary, output = self.scripted_phase("floor", script, namespace)
        if output["failures"]:
            summary["first_failure"] = next(iter(output["failures"].values()))
        summary["failures"] = len(output["failures"])
        return summary

    def api_ceiling(self) -> dict[str, Any]:
        """Phase 0: the API server's own ceiling for this workload (``bench/ceiling.py``).

        The writer probes its concurrency on Certificates created (untimed) in a namespace
        of their own, then is timed exactly like the floor and certmint.
        """
        probes, namespace = f"bench-probe-{self.run_id}", f"bench-ceiling-{self.run_id}"
        self.api.create_namespace(probes)
        self.api.create_namespace(namespace)
        count = ceiling.probe_count(self.n)
        probe_names = workload.names(count)
        workload.create_certificates(self.api, probes, probe_names, self.create_concurrency)
        api_writes.wait_for_quiet(self.api.request_counts)
        script = ["-m", "bench.ceiling", "--probe-namespace", probes, "--probe-count", str(count)]
        summary, output = self.scripted_phase("ceiling", script, namespace)
        summary |= output
        summary["api_ceiling_certs_per_second"] = summary["certs_per_second"]
        self.api.empty_namespace(probes)
        self.api.delete_namespace(probes)
        return summary

    def scripted_phase(
        self, role: str, script: list[str], namespace: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Certificates created as in certmint's phase and issued by a script, not certmint.

        The script (a separate process) prints ``ready``, then gets each name on stdin as
        soon as its create returns, and prints one JSON document at the end. A watch times
        Ready as in certmint's phase. The namespace is emptied and deleted afterwards
        (unless ``keep``): the operator never sees it.

        Returns:
            The phase's summary and the script's document.
        """
        command = [sys.executable, *script, "--kubeconfig", str(self.kubeconfig)]
        process = subprocess.Popen(
            [*command, "--namespace", namespace],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parent.parent,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        pipe: IO[bytes] = process.stdin
        if process.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the {role} script did not start")
        lock = threading.Lock()

        def hand_over(name: str) -> None:
            with lock:
                pipe.write(f"{name}\n".encode())
                pipe.flush()

        watcher = workload.ReadyWatch(self.api, namespace, self.n)
        watcher.start()
        counts_before = self.api.request_counts()
        cpu_before = machine.CpuSnapshot.take(self.control_plane | {role: process.pid})
        created = workload.create_certificates(
            self.api, namespace, self.names(), self.create_concurrency, hand_over
        )
        pipe.close()
        output = json.loads(process.stdout.read())
        process.wait()
        if output["failures"]:  # those never turn Ready: report the rest
            with contextlib.suppress(TimeoutError):
                watcher.wait(FAILED_PHASE_GRACE_SECONDS)
            watcher.stop()
        else:
            watcher.wait(self.deadline())
        cpu = cpu_before.until(machine.CpuSnapshot.take(self.control_plane))
        api_writes.wait_for_quiet(self.api.request_counts)
        own = {("POST", PLURAL, ""): float(self.n)}
        writes = api_writes.writes_between(counts_before, self.api.request_counts(), own)
        summary = report.phase_summary(self.n, created, watcher.ready, writes)
        summary["cpu_seconds"] = cpu
        if not self.keep:
            self.api.empty_namespace(namespace)
            self.api.delete_namespace(namespace)
        return summary, output

    def scrape_cost(self, operator: OperatorProcess) -> float:
        """Operator CPU seconds spent on one full scrape of ``/metrics``.

        Taken once the operator is idle: right after the last Ready it is still reading
        its watches' backlog (at 100,000, for minutes), which would count as the scrape's.
        """
        if not machine.wait_for_idle(operator.pid):
            print("scrape cost: the operator did not go idle; measured anyway", file=sys.stderr)
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
