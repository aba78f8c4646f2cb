"""Micro-benchmark of one ``/metrics`` scrape over a large synthetic store (not a test).

Fills a `certmint.core.state.Store` with N Certificate records parsed by the operator's
own parser (20 namespaces, 2 issuers each; 1 % not Ready, 0.5 % past their renewal time,
0.2 % expired, the rest Ready with notAfter spread over the next 24 hours), registers the
operator's collector in a private registry and times ``generate_latest`` in CPU seconds
(``time.process_time``):

- ``first``: the first scrape after every record was stored (the index applies them all);
- ``steady``: a scrape with nothing changed since the last one (median of 5);
- ``after 1% changed``: a scrape after 1 % of the records got a new status object, as a
  status patch or a watch event gives them (median of 5);
- each ``--per-certificate-metrics`` mode.

It also prints the number of samples and the size of the page, and the memory the index
holds (tracemalloc). Works against the code before the aggregates too (one mode, "all").

Run: ``.venv/bin/python bench/scrape_bench.py [--n 100000]``
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from certmint.core import state
from certmint.runtime import handlers, health, metrics

NOW = datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(index: int) -> dict[str, Any]:
    ready, reason = ("True", "Issued")
    not_after = NOW + timedelta(seconds=60 + (index * 7919) % 86000)
    if index % 100 == 1:
        ready, reason = ("False", "PolicyViolation")
    elif index % 200 == 2:
        not_after = NOW + timedelta(minutes=30)  # renewal 16 h ago: overdue
    elif index % 500 == 3:
        not_after = NOW - timedelta(hours=1)
    renewal = not_after - timedelta(hours=8)
    if index % 200 != 2 and index % 500 != 3 and renewal < NOW:
        renewal = NOW + timedelta(minutes=5)
        not_after = max(not_after, renewal + timedelta(minutes=1))
    condition = {"type": "Ready", "status": ready, "reason": reason, "message": reason}
    return {
        "conditions": [condition],
        "notBefore": _stamp(not_after - timedelta(hours=24)),
        "notAfter": _stamp(not_after),
        "renewalTime": _stamp(renewal),
        "revision": 1,
    }


def fill(n: int) -> state.Store:
    store = state.Store()
    for index in range(n):
        namespace = f"team-{index % 20:02d}"
        body = {
            "metadata": {
                "name": f"workload-{index:06d}",
                "namespace": namespace,
                "uid": f"uid-{index}",
                "resourceVersion": str(index),
            },
            "spec": {
                "secretName": f"workload-{index:06d}-tls",
                "issuerRef": {"name": f"ca-{index % 2}", "kind": "ClusterIssuer"},
                "serviceAccountName": "app",
                "dnsNames": [f"workload-{index:06d}.{namespace}.svc"],
            },
            "status": _status(index),
        }
        store.put_certificate(handlers.certificate_record(body))
    return store


def cpu(action: Callable[[], bytes]) -> tuple[float, bytes]:
    before = time.process_time()
    page = action()
    return time.process_time() - before, page


def touch(store: state.Store, share: float) -> None:
    """Gives ``share`` of the records a new (equal) status object, as a status patch does."""
    step = int(1 / share)
    for index, record in enumerate(list(store.certificates.values())):
        if index % step == 0:
            if hasattr(store, "set_certificate_status"):
                store.set_certificate_status(record, dataclasses.replace(record.status))
            else:
                record.status = dataclasses.replace(record.status)


def run_mode(store: state.Store, mode: str | None) -> None:
    kwargs: dict[str, Any] = {}
    if mode is not None:
        kwargs["per_certificate"] = metrics.PerCertificate(mode)
    # What the collector holds (tracemalloc slows the code it traces: timed apart).
    tracemalloc.start()
    traced = metrics.StoreCollector(store, health.WatchHealth(), lambda: True, **kwargs)
    list(traced.collect())
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del traced
    collector = metrics.StoreCollector(store, health.WatchHealth(), lambda: True, **kwargs)
    registry = CollectorRegistry()
    registry.register(collector)
    first, page = cpu(lambda: generate_latest(registry))
    steady = statistics.median(cpu(lambda: generate_latest(registry))[0] for _ in range(5))
    changed = []
    for _ in range(5):
        touch(store, 0.01)
        changed.append(cpu(lambda: generate_latest(registry))[0])
    samples = sum(1 for line in page.splitlines() if line and not line.startswith(b"#"))
    print(
        f"{mode or 'before':>9} | first {first:6.3f} s | steady {steady:6.3f} s"
        f" | after 1% changed {statistics.median(changed):6.3f} s"
        f" | {samples:7d} samples, {len(page) / 1e6:5.1f} MB"
        f" | collector holds {held / 1e6:5.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--modes", default="attention,none,all")
    args = parser.parse_args()
    started = time.monotonic()
    store = fill(args.n)
    print(f"{args.n} records in {time.monotonic() - started:.1f} s")
    modern = "per_certificate" in inspect.signature(metrics.StoreCollector).parameters
    for mode in args.modes.split(",") if modern else [None]:
        run_mode(store, mode)


if __name__ == "__main__":
    main()
