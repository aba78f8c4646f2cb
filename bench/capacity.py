"""The capacity model: what one operator process and one API server hold, and when to shard.

Pure arithmetic over the costs ``make bench`` measures (``bench/results.json``): bytes,
CPU and API writes per certificate, the CPU of a ``/metrics`` scrape, and the API
ceiling (certificates per second the API server and etcd take for the two unavoidable
writes). docs/performance.md ("Capacity model") explains every formula and shows the
worked table this module prints::

    python -m bench.capacity                                   # the costs measured in the docs
    python -m bench.capacity --results bench/results.json ...  # the costs of your own runs
    python -m bench.capacity --certificates 250000 --lifetime 1h

What it does not model: the API server's other clients (its budget is a share of the
ceiling, ``--api-share``), watch fan-out to other controllers, and bursts beyond one CA
rotation wave. The ceiling is measured on the same two cores as everything else; a real
control plane with its own cores has a higher one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

#: What the API ceiling writes per certificate (the Secret create and the status patch).
CEILING_WRITES_PER_CERT = 2.0


@dataclasses.dataclass(frozen=True)
class Costs:
    """What one certificate costs, as measured.

    Attributes:
        base_rss_mb: Resident memory of an operator holding no certificate.
        kb_per_cert: Resident memory per certificate held.
        cpu_ms_per_issuance: Operator CPU per issuance (a renewal costs the same).
        writes_per_issuance: API writes per issuance (Secret, status, Event).
        scrape_cpu_ms_per_cert: Operator CPU of one full ``/metrics`` scrape, per certificate.
        api_ceiling_certs_per_second: Certificates per second the API server takes at two
            writes each (``api_ceiling_certs_per_second`` in results.json).
        api_cpu_ms_per_write: CPU of the API server and etcd per write during the
            ceiling phase: what the ceiling would be with cores of their own
            (`with_api_cores`), whatever else the benchmark machine was running.
    """

    base_rss_mb: float
    kb_per_cert: float
    cpu_ms_per_issuance: float
    writes_per_issuance: float
    scrape_cpu_ms_per_cert: float
    api_ceiling_certs_per_second: float
    api_cpu_ms_per_write: float | None = None

    @property
    def api_write_ceiling(self) -> float:
        """API writes per second the API server takes (all kinds alike)."""
        return self.api_ceiling_certs_per_second * CEILING_WRITES_PER_CERT


#: docs/performance.md's measured costs: 95.6 MB at 1,000, 140.7 MB at 10,000 and 560 MB
#: at 100,000, 2.8-3.2 ms of operator CPU and 3.0 writes per issuance, a 0.098 s scrape at
#: 100,000 (quiet machine); 3.1 ms of API server and etcd CPU per write in the ceiling
#: phase, so a ceiling of 322 certificates/s for an API server and etcd with two cores of
#: their own (`with_api_cores`).
MEASURED_API_CPU_MS_PER_WRITE = 3.1


def with_api_cores(costs: Costs, cores: float) -> Costs:
    """The costs with the ceiling of an API server (and etcd) that has ``cores`` to itself.

    Raises:
        ValueError: The costs have no API CPU per write to scale.
    """
    if not costs.api_cpu_ms_per_write:
        raise ValueError("no api_cpu_ms_per_write: the results have no ceiling phase CPU")
    rate = cores * 1000.0 / (costs.api_cpu_ms_per_write * CEILING_WRITES_PER_CERT)
    return dataclasses.replace(costs, api_ceiling_certs_per_second=round(rate, 1))


MEASURED = with_api_cores(
    Costs(
        base_rss_mb=91.0,
        kb_per_cert=4.7,
        cpu_ms_per_issuance=3.2,
        writes_per_issuance=3.0,
        scrape_cpu_ms_per_cert=0.001,
        api_ceiling_certs_per_second=0.0,
        api_cpu_ms_per_write=MEASURED_API_CPU_MS_PER_WRITE,
    ),
    cores=2.0,
)


@dataclasses.dataclass(frozen=True)
class Budget:
    """What an operator process and the API server may spend on certificates.

    Attributes:
        memory_mb: The operator's memory limit (its pod's ``resources.limits.memory``).
        cpu_cores: Steady-state CPU one process may use; at most one core (one
            interpreter: the GIL), less to keep headroom for bursts and restarts.
        api_share: Share of the API server's write ceiling certmint may use in steady
            state; the API server serves every other client too.
        scrape_interval: Seconds between two Prometheus scrapes.
        renewal_rate: ``--renewal-rate``: scheduled re-issues per second per process.
        rate_headroom: Share of ``renewal_rate`` steady renewals may use; the rest
            catches up after an outage (renewals that came due meanwhile).
    """

    memory_mb: float = 1024.0
    cpu_cores: float = 0.5
    api_share: float = 0.10
    scrape_interval: float = 30.0
    renewal_rate: float = 50.0
    rate_headroom: float = 0.5


@dataclasses.dataclass(frozen=True)
class Fleet:
    """Certificates of one lifetime, each renewed at ``renew_at`` of it (2/3 by default)."""

    certificates: int
    lifetime: timedelta
    renew_at: float = 2 / 3

    @property
    def renewal_interval(self) -> float:
        """Seconds between two issuances of one certificate."""
        return self.lifetime.total_seconds() * self.renew_at

    @property
    def renewals_per_second(self) -> float:
        """The steady renewal rate of the whole fleet: certificates / renewal interval."""
        return self.certificates / self.renewal_interval


@dataclasses.dataclass(frozen=True)
class Load:
    """What a fleet costs when one process serves it all."""

    renewals_per_second: float
    api_writes_per_second: float
    api_ceiling_share: float
    memory_mb: float
    renewal_cpu_cores: float
    scrape_cpu_cores: float
    rotation_wave_seconds: float

    @property
    def cpu_cores(self) -> float:
        return self.renewal_cpu_cores + self.scrape_cpu_cores


def load(fleet: Fleet, costs: Costs, budget: Budget) -> Load:
    """The steady cost of ``fleet`` on one process and on the API server.

    A CA rotation re-issues every certificate; its wave runs at the slowest of the rate
    bound, the process's CPU (one core) and the API ceiling.
    """
    rate = fleet.renewals_per_second
    wave_rate = min(
        budget.renewal_rate,
        1000.0 / costs.cpu_ms_per_issuance,
        costs.api_write_ceiling / costs.writes_per_issuance,
    )
    return Load(
        renewals_per_second=rate,
        api_writes_per_second=rate * costs.writes_per_issuance,
        api_ceiling_share=rate * costs.writes_per_issuance / costs.api_write_ceiling,
        memory_mb=costs.base_rss_mb + fleet.certificates * costs.kb_per_cert / 1000.0,
        renewal_cpu_cores=rate * costs.cpu_ms_per_issuance / 1000.0,
        scrape_cpu_cores=(
            fleet.certificates * costs.scrape_cpu_ms_per_cert / 1000.0 / budget.scrape_interval
        ),
        rotation_wave_seconds=fleet.certificates / wave_rate,
    )


@dataclasses.dataclass(frozen=True)
class Limits:
    """The largest fleet (of one lifetime) each resource allows."""

    per_process_by_memory: int
    per_process_by_cpu: int
    per_process_by_rate_bound: int
    per_api_server: int

    @property
    def per_process(self) -> int:
        return min(
            self.per_process_by_memory, self.per_process_by_cpu, self.per_process_by_rate_bound
        )


def limits(lifetime: timedelta, costs: Costs, budget: Budget, renew_at: float = 2 / 3) -> Limits:
    """Certificates one process (memory, CPU, rate bound) and one API server can hold.

    Per certificate, a process spends ``cpu_ms / renewal interval`` on renewals and
    ``scrape_ms / scrape interval`` on scrapes, every second, and renews once per
    renewal interval through its rate bound; the API server takes
    ``writes / renewal interval``.
    """
    interval = lifetime.total_seconds() * renew_at
    cpu_per_cert = (
        costs.cpu_ms_per_issuance / interval + costs.scrape_cpu_ms_per_cert / budget.scrape_interval
    ) / 1000.0
    memory = (budget.memory_mb - costs.base_rss_mb) * 1000.0 / costs.kb_per_cert
    writes_per_cert = costs.writes_per_issuance / interval
    return Limits(
        per_process_by_memory=max(0, math.floor(memory)),
        per_process_by_cpu=math.floor(budget.cpu_cores / cpu_per_cert),
        per_process_by_rate_bound=math.floor(budget.renewal_rate * budget.rate_headroom * interval),
        per_api_server=math.floor(budget.api_share * costs.api_write_ceiling / writes_per_cert),
    )


def shards_needed(fleet: Fleet, costs: Costs, budget: Budget) -> int:
    """Operator processes (shards) the fleet needs: memory, CPU and rate bound divided.

    Sharding never divides the API server's load: every shard writes to the same one
    (`fits_api_server`).
    """
    bound = limits(fleet.lifetime, costs, budget, fleet.renew_at)
    return max(1, math.ceil(fleet.certificates / bound.per_process))


def fits_api_server(fleet: Fleet, costs: Costs, budget: Budget) -> bool:
    """Whether the fleet's steady renewal writes stay within the API server budget."""
    return (
        fleet.certificates <= limits(fleet.lifetime, costs, budget, fleet.renew_at).per_api_server
    )


def _line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares (intercept, slope) through at least two points of distinct x."""
    xs, ys = zip(*points, strict=True)
    slope, intercept = statistics.linear_regression(xs, ys)
    return intercept, slope


def costs_from_results(documents: Sequence[Mapping[str, Any]], fallback: Costs = MEASURED) -> Costs:
    """The costs measured by ``make bench`` runs (their ``results.json``).

    Memory is a line through (N, peak RSS) when the runs have two sizes or more; with one
    size, ``fallback``'s base is kept and the slope is what the run adds on top of it. CPU
    and writes are the runs' means; the ceiling is the lowest run's (the conservative one).
    A field no run has keeps ``fallback``'s value.
    """

    def values(key: str) -> list[float]:
        return [float(doc[key]) for doc in documents if doc.get(key) is not None]

    rss = [(float(doc["n"]), float(doc["operator_peak_rss_mb"])) for doc in documents
           if doc.get("operator_peak_rss_mb")]  # fmt: skip
    base, kb = fallback.base_rss_mb, fallback.kb_per_cert
    if len({n for n, _ in rss}) >= 2:
        base, slope_mb = _line(rss)
        kb = slope_mb * 1000.0
    elif rss:
        kb = statistics.mean((mb - base) * 1000.0 / n for n, mb in rss)
    scrape = [
        float(doc["scrape_cpu_seconds"]) * 1000.0 / float(doc["n"])
        for doc in documents
        if doc.get("scrape_cpu_seconds")
    ]
    ceilings = [rate for doc in documents if (rate := _writes_only_ceiling(doc)) is not None]
    api_cpu = [cost for doc in documents if (cost := _api_cpu_ms_per_write(doc)) is not None]
    cpu, writes = values("operator_cpu_ms_per_cert"), values("api_writes_per_cert")
    return Costs(
        base_rss_mb=base,
        kb_per_cert=kb,
        cpu_ms_per_issuance=statistics.mean(cpu) if cpu else fallback.cpu_ms_per_issuance,
        writes_per_issuance=statistics.mean(writes) if writes else fallback.writes_per_issuance,
        scrape_cpu_ms_per_cert=statistics.mean(scrape)
        if scrape
        else fallback.scrape_cpu_ms_per_cert,
        api_ceiling_certs_per_second=(
            min(ceilings) if ceilings else fallback.api_ceiling_certs_per_second
        ),
        api_cpu_ms_per_write=statistics.mean(api_cpu) if api_cpu else fallback.api_cpu_ms_per_write,
    )


def _writes_only_ceiling(document: Mapping[str, Any]) -> float | None:
    """The ceiling for the two writes alone: the ceiling phase's best probe.

    A renewal has no Certificate create, so the model takes the writes-only rate; results
    from before the probes were reported give their ``api_ceiling_certs_per_second``.
    """
    ceiling = document.get("api_ceiling") or {}
    rate = ceiling.get("writes_only_certs_per_second") or document.get(
        "api_ceiling_certs_per_second"
    )
    return float(rate) if rate is not None else None


def _api_cpu_ms_per_write(document: Mapping[str, Any]) -> float | None:
    """API server + etcd CPU per write in a run's ceiling phase.

    That phase writes all N twice and creates the N Certificates (the create is a write
    too); the Ready watch's cost is spread over the writes.
    """
    ceiling = document.get("api_ceiling") or {}
    cpu = ceiling.get("cpu_seconds") or {}
    if "kube-apiserver" not in cpu or not document.get("n"):
        return None
    writes = float(document["n"]) * (float(ceiling.get("api_writes_per_cert") or 2.0) + 1.0)
    return (float(cpu["kube-apiserver"]) + float(cpu.get("etcd", 0.0))) * 1000.0 / writes


def _duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=float(text[:-1]) * units[text[-1]])


def _hours(td: timedelta) -> str:
    hours = td.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{td.total_seconds() / 60:g} min"


HEADER = (
    "| certificates | lifetime | renewals/s | API writes/s | of API ceiling | "
    "RSS, one process (MB) | CPU, one process (cores: renewals + scrapes) | "
    "CA rotation wave | shards |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
)


def table(fleets: Sequence[Fleet], costs: Costs, budget: Budget) -> str:
    """The worked table of docs/performance.md, as Markdown."""
    rows = list(HEADER)
    for fleet in fleets:
        cost = load(fleet, costs, budget)
        fits = fits_api_server(fleet, costs, budget)
        rows.append(
            f"| {fleet.certificates:,} | {_hours(fleet.lifetime)} "
            f"| {cost.renewals_per_second:.2f} | {cost.api_writes_per_second:.1f} "
            f"| {cost.api_ceiling_share:.1%}{'' if fits else ' (over budget)'} "
            f"| {cost.memory_mb:,.0f} "
            f"| {cost.cpu_cores:.2f} ({cost.renewal_cpu_cores:.2f} + {cost.scrape_cpu_cores:.2f}) "
            f"| {cost.rotation_wave_seconds / 60:,.0f} min "
            f"| {shards_needed(fleet, costs, budget)} |"
        )
    return "\n".join(rows)


def summary(costs: Costs, budget: Budget, lifetimes: Sequence[timedelta]) -> str:
    """The costs, and each lifetime's limits, as text."""
    lines = [
        "costs: " + ", ".join(f"{k}={v:g}" for k, v in dataclasses.asdict(costs).items()),
        "budget: " + ", ".join(f"{k}={v:g}" for k, v in dataclasses.asdict(budget).items()),
        f"issuance rate by CPU: {1000.0 / costs.cpu_ms_per_issuance:.0f} certificates/s per core",
    ]
    for lifetime in lifetimes:
        bound = limits(lifetime, costs, budget)
        lines.append(
            f"lifetime {_hours(lifetime)}: per process {bound.per_process:,} "
            f"(memory {bound.per_process_by_memory:,}, CPU {bound.per_process_by_cpu:,}, "
            f"rate bound {bound.per_process_by_rate_bound:,}); "
            f"per API server {bound.per_api_server:,}"
        )
    return "\n".join(lines)


DEFAULT_FLEETS = tuple(
    Fleet(n, timedelta(hours=hours))
    for n, hours in ((10_000, 24), (100_000, 24), (100_000, 1), (1_000_000, 24), (1_000_000, 1))
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--results", type=Path, action="append", default=[])
    parser.add_argument("--certificates", type=int, action="append", default=[])
    parser.add_argument("--lifetime", type=_duration, action="append", default=[])
    parser.add_argument("--memory-mb", type=float, default=Budget.memory_mb)
    parser.add_argument("--cpu-cores", type=float, default=Budget.cpu_cores)
    parser.add_argument("--api-share", type=float, default=Budget.api_share)
    parser.add_argument("--renewal-rate", type=float, default=Budget.renewal_rate)
    parser.add_argument(
        "--api-cores", type=float, help="the ceiling of an API server with this many cores"
    )
    args = parser.parse_args(argv)
    documents = [json.loads(path.read_text()) for path in args.results]
    costs = costs_from_results(documents) if documents else MEASURED
    if args.api_cores:
        costs = with_api_cores(costs, args.api_cores)
    budget = Budget(
        memory_mb=args.memory_mb,
        cpu_cores=args.cpu_cores,
        api_share=args.api_share,
        renewal_rate=args.renewal_rate,
    )
    fleets = (
        tuple(
            Fleet(n, lifetime)
            for n in args.certificates or (100_000,)
            for lifetime in args.lifetime or (timedelta(hours=24),)
        )
        if args.certificates or args.lifetime
        else DEFAULT_FLEETS
    )
    lifetimes = sorted({fleet.lifetime for fleet in fleets}, reverse=True)
    print(summary(costs, budget, lifetimes))
    print()
    print(table(fleets, costs, budget))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
