"""The capacity model's arithmetic (bench/capacity.py): loads, limits, shards, fitted costs."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from bench import capacity

#: Round numbers, so that every expected value below can be checked by hand.
COSTS = capacity.Costs(
    base_rss_mb=100.0,
    kb_per_cert=10.0,
    cpu_ms_per_issuance=5.0,
    writes_per_issuance=3.0,
    scrape_cpu_ms_per_cert=0.05,
    api_ceiling_certs_per_second=150.0,  # 300 writes/s
)
BUDGET = capacity.Budget(
    memory_mb=1100.0,
    cpu_cores=0.5,
    api_share=0.10,
    scrape_interval=30.0,
    renewal_rate=20.0,
    rate_headroom=0.5,
)
DAY, HOUR = timedelta(hours=24), timedelta(hours=1)


def test_100k_of_24h_renewed_at_two_thirds_cost_the_api_server_5_writes_a_second() -> None:
    fleet = capacity.Fleet(100_000, DAY)
    cost = capacity.load(fleet, COSTS, BUDGET)
    assert {
        "renewal interval (s)": fleet.renewal_interval,
        "renewals/s": round(cost.renewals_per_second, 4),
        "writes/s": round(cost.api_writes_per_second, 3),
        "share of the ceiling": round(cost.api_ceiling_share, 5),
        "memory (MB)": cost.memory_mb,
        "renewal CPU (cores)": round(cost.renewal_cpu_cores, 5),
        "scrape CPU (cores)": round(cost.scrape_cpu_cores, 5),
        "rotation wave (s)": cost.rotation_wave_seconds,
    } == {
        "renewal interval (s)": 57_600.0,  # 16 h
        "renewals/s": 1.7361,  # 100,000 / 57,600
        "writes/s": 5.208,
        "share of the ceiling": 0.01736,  # of 300 writes/s
        "memory (MB)": 1100.0,  # 100 + 100,000 x 10 KB
        "renewal CPU (cores)": 0.00868,  # 1.736/s x 5 ms
        "scrape CPU (cores)": 0.16667,  # 100,000 x 0.05 ms every 30 s
        "rotation wave (s)": 5000.0,  # at the rate bound, 20/s
    }


@pytest.mark.parametrize(
    ("costs", "budget", "wave_rate"),
    [
        pytest.param(COSTS, BUDGET, 20.0, id="a rotation wave runs at the rate bound"),
        pytest.param(
            capacity.Costs(**{**COSTS.__dict__, "cpu_ms_per_issuance": 100.0}),
            BUDGET,
            10.0,
            id="a rotation wave runs at one core's rate when the CPU is slower than the bound",
        ),
        pytest.param(
            capacity.Costs(**{**COSTS.__dict__, "api_ceiling_certs_per_second": 15.0}),
            capacity.Budget(renewal_rate=1000.0),
            10.0,  # 30 writes/s over 3 writes
            id="a rotation wave runs at the API ceiling when that is the slowest",
        ),
    ],
)
def test_rotation_wave_rate(
    costs: capacity.Costs, budget: capacity.Budget, wave_rate: float
) -> None:
    cost = capacity.load(capacity.Fleet(1000, DAY), costs, budget)
    assert cost.rotation_wave_seconds == pytest.approx(1000 / wave_rate)


@pytest.mark.parametrize(
    ("lifetime", "expected"),
    [
        pytest.param(
            DAY,
            capacity.Limits(
                per_process_by_memory=100_000,  # (1100 - 100) MB / 10 KB
                per_process_by_cpu=285_148,  # 0.5 / (5 ms / 57,600 s + 0.05 ms / 30 s)
                per_process_by_rate_bound=576_000,  # 20/s x 0.5 x 57,600 s
                per_api_server=576_000,  # 0.1 x 300 writes/s / (3 / 57,600 s)
            ),
            id="a 24h fleet is bounded by memory",
        ),
        pytest.param(
            HOUR,
            capacity.Limits(
                per_process_by_memory=100_000,
                per_process_by_cpu=133_333,  # 0.5 / (5 ms / 2,400 s + 0.05 ms / 30 s)
                per_process_by_rate_bound=24_000,
                per_api_server=24_000,
            ),
            id="a 1h fleet is bounded by the rate bound and by the API server",
        ),
    ],
)
def test_limits(lifetime: timedelta, expected: capacity.Limits) -> None:
    assert capacity.limits(lifetime, COSTS, BUDGET) == expected


@pytest.mark.parametrize(
    ("fleet", "shards", "fits"),
    [
        pytest.param(capacity.Fleet(50_000, DAY), 1, True, id="50k of 24h fit one process"),
        pytest.param(capacity.Fleet(100_001, DAY), 2, True, id="one more than memory holds: two"),
        pytest.param(capacity.Fleet(500_000, DAY), 5, True, id="500k of 24h: five shards"),
        pytest.param(
            capacity.Fleet(100_000, HOUR),
            5,
            False,
            id="100k of 1h: five shards by the rate bound, and over the API server budget",
        ),
    ],
)
def test_shards_needed(fleet: capacity.Fleet, shards: int, fits: bool) -> None:
    assert (
        capacity.shards_needed(fleet, COSTS, BUDGET),
        capacity.fits_api_server(fleet, COSTS, BUDGET),
    ) == (shards, fits)


def run(n: int, rss_mb: float, **fields: float) -> dict[str, float]:
    return {"n": n, "operator_peak_rss_mb": rss_mb, **fields}


@pytest.mark.parametrize(
    ("documents", "expected"),
    [
        pytest.param(
            [
                run(1000, 120.0, operator_cpu_ms_per_cert=6.0, api_writes_per_cert=3.0),
                run(10_000, 240.0, operator_cpu_ms_per_cert=5.0, api_writes_per_cert=3.0),
            ],
            capacity.Costs(
                base_rss_mb=106.667,
                kb_per_cert=13.333,
                cpu_ms_per_issuance=5.5,
                writes_per_issuance=3.0,
                scrape_cpu_ms_per_cert=COSTS.scrape_cpu_ms_per_cert,
                api_ceiling_certs_per_second=COSTS.api_ceiling_certs_per_second,
            ),
            id="two sizes fit a line through memory; CPU is the mean; the rest falls back",
        ),
        pytest.param(
            [
                run(
                    10_000,
                    300.0,
                    scrape_cpu_seconds=0.6,
                    api_ceiling_certs_per_second=200.0,
                ),
                run(10_000, 300.0, api_ceiling_certs_per_second=180.0),
            ],
            capacity.Costs(
                base_rss_mb=100.0,
                kb_per_cert=20.0,
                cpu_ms_per_issuance=5.0,
                writes_per_issuance=3.0,
                scrape_cpu_ms_per_cert=0.06,
                api_ceiling_certs_per_second=180.0,
            ),
            id="one size keeps the base; the ceiling is the lowest run's",
        ),
    ],
)
def test_costs_from_results(documents: list[dict[str, float]], expected: capacity.Costs) -> None:
    found = capacity.costs_from_results(documents, fallback=COSTS)
    rounded = capacity.Costs(
        **{key: None if value is None else round(value, 3) for key, value in found.__dict__.items()}
    )
    assert rounded == expected


def test_the_ceiling_phase_cpu_gives_the_ceiling_of_an_api_server_with_cores_of_its_own() -> None:
    document = {
        "n": 1000,
        "api_ceiling": {
            "api_ceiling_certs_per_second": 37.1,  # with the creates and the watch
            "writes_only_certs_per_second": 52.4,  # the best probe: a renewal's ceiling
            "api_writes_per_cert": 2.0,
            "cpu_seconds": {"kube-apiserver": 5.0, "etcd": 1.0, "others": 46.0},
        },
        "api_ceiling_certs_per_second": 37.1,
    }
    costs = capacity.costs_from_results([document], fallback=COSTS)
    assert (
        costs.api_ceiling_certs_per_second,
        costs.api_cpu_ms_per_write,  # 6 CPU s over 1,000 creates and 2,000 writes
        capacity.with_api_cores(costs, 2.0).api_ceiling_certs_per_second,  # 2 x 1000 / 4 ms
    ) == (52.4, 2.0, 500.0)


def test_results_without_probes_give_their_ceiling() -> None:
    document = {"n": 1000, "api_ceiling_certs_per_second": 37.1}
    costs = capacity.costs_from_results([document], fallback=COSTS)
    assert costs.api_ceiling_certs_per_second == 37.1


def test_without_ceiling_cpu_there_is_no_ceiling_to_scale() -> None:
    with pytest.raises(ValueError, match="no api_cpu_ms_per_write"):
        capacity.with_api_cores(COSTS, 2.0)


def test_the_worked_table_has_one_row_per_fleet_and_flags_the_api_budget() -> None:
    fleets = [capacity.Fleet(100_000, DAY), capacity.Fleet(100_000, HOUR)]
    lines = capacity.table(fleets, COSTS, BUDGET).splitlines()
    assert lines[2:] == [
        "| 100,000 | 24 h | 1.74 | 5.2 | 1.7% | 1,100 | 0.18 (0.01 + 0.17) | 83 min | 1 |",
        "| 100,000 | 1 h | 41.67 | 125.0 | 41.7% (over budget) | 1,100 "
        "| 0.38 (0.21 + 0.17) | 83 min | 5 |",
    ]
    assert math.isclose(capacity.load(fleets[1], COSTS, BUDGET).api_ceiling_share, 125.0 / 300.0)
