"""What a run reports: each phase's summary, ``bench/results.json`` and the table."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bench import api_writes, stats


def phase_summary(
    n: int,
    created: Mapping[str, float],
    ready: Mapping[str, float],
    writes: Mapping[str, int],
) -> dict[str, Any]:
    """The headline numbers of one issuing phase (operator or floor)."""
    seconds, rate = stats.throughput(created, ready)
    waited = stats.latencies(created, ready)
    writes_per_cert = api_writes.issuing_writes(writes) / len(ready) if ready else math.nan
    return {
        "n": n,
        "ready": len(ready),
        "seconds_to_all_ready": stats.rounded(seconds),
        "certs_per_second": stats.rounded(rate, 1),
        "p50_latency_s": stats.rounded(stats.percentile(waited, 0.5)) if waited else None,
        "p99_latency_s": stats.rounded(stats.percentile(waited, 0.99)) if waited else None,
        "api_writes_per_cert": stats.rounded(writes_per_cert, 3),
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
    document |= ceiling_fields(operator, extra)
    document |= {key: value for key, value in extra.items() if key not in document}
    return document


def ceiling_fields(operator: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The API ceiling, certmint's ratio to it, and the per-certificate operator cost."""
    ceiling = extra.get("api_ceiling") or {}
    rate = ceiling.get("api_ceiling_certs_per_second")
    cpu = extra.get("operator_cpu_seconds")
    ready = operator["ready"]
    return {
        "api_ceiling_certs_per_second": rate,
        "ratio_to_api_ceiling": (
            round(operator["certs_per_second"] / rate, 3)
            if rate and operator["certs_per_second"]
            else None
        ),
        "scrape_cpu_seconds": extra.get("scrape_cpu_seconds"),
        "operator_cpu_ms_per_cert": round(1000 * cpu / ready, 2) if cpu and ready else None,
    }


def table(results: Mapping[str, Any]) -> str:
    """The results as an aligned two-column text table."""
    rows: list[tuple[str, Any]] = [
        ("certificates (N)", results["n"]),
        ("ready", results["ready"]),
        ("seconds to all Ready", results["seconds_to_all_ready"]),
        ("certificates / second", results["certs_per_second"]),
        ("floor certificates / second", results["floor_certs_per_second"]),
        ("ratio to floor", results["ratio_to_floor"]),
        ("API ceiling certificates / second", results.get("api_ceiling_certs_per_second")),
        ("ratio to API ceiling", results.get("ratio_to_api_ceiling")),
        ("p50 latency create->Ready (s)", results["p50_latency_s"]),
        ("p99 latency create->Ready (s)", results["p99_latency_s"]),
        ("API writes / certificate", results["api_writes_per_cert"]),
        ("operator peak RSS (MB)", results["operator_peak_rss_mb"]),
        ("operator CPU seconds", results["operator_cpu_seconds"]),
        ("operator CPU ms / certificate", results.get("operator_cpu_ms_per_cert")),
        ("one /metrics scrape: operator CPU (s)", results.get("scrape_cpu_seconds")),
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
    rows += wave_rows(results.get("reissue_wave"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def wave_rows(wave: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """The re-issue wave's rows of the table (none when it did not run)."""
    if not wave:
        return []
    quiet, during = wave.get("quiet_reads") or {}, wave.get("wave_reads") or {}
    return [
        (
            "wave: renewal rate bound (/s, burst)",
            f"{wave['renewal_rate']}, {wave['renewal_burst']}",
        ),
        ("wave: re-issued", wave["reissued"]),
        ("wave: seconds trigger -> all re-issued", wave["wave_seconds"]),
        ("wave: seconds trigger -> first re-issue", wave.get("first_reissue_s")),
        ("wave: re-issues / second", wave["reissues_per_second"]),
        ("wave: ratio to rate bound", wave.get("ratio_to_rate_bound")),
        ("wave: API writes / re-issue", wave.get("api_writes_per_reissue")),
        ("wave: operator CPU seconds", wave.get("operator_cpu_seconds")),
        ("wave: others CPU seconds", (wave.get("cpu_seconds") or {}).get("others")),
        ("wave: extrapolated to 100k (s)", wave.get("extrapolated_100k_seconds")),
        (
            "wave: read p99 quiet / wave, API server (s)",
            f"{quiet.get('server_p99_s')} / {during.get('server_p99_s')}",
        ),
        (
            "wave: read p99 quiet / wave, reader clock (s)",
            f"{quiet.get('client_p99_s')} / {during.get('client_p99_s')}",
        ),
        ("wave: load average at trigger", wave.get("loadavg_at_trigger")),
    ]
