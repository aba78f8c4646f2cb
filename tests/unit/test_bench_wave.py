"""The re-issue wave's pure parts: the API server's histogram, the wave's arithmetic.

No timing is asserted here: the benchmark measures, the tests only check the arithmetic.
"""

from __future__ import annotations

import base64
import datetime
import math
from typing import Any

import pytest
from bench import latency, report, wave
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certmint.pki import ca as pki_ca
from certmint.pki import keys

INF = math.inf


def _bucket(verb: str, resource: str, le: str, value: float, subresource: str = "") -> str:
    labels = (
        f'component="apiserver",dry_run="",group="",le="{le}",resource="{resource}",'
        f'scope="resource",subresource="{subresource}",verb="{verb}",version="v1"'
    )
    return f"apiserver_request_duration_seconds_bucket{{{labels}}} {value}"


APISERVER_METRICS = "\n".join(
    [
        "# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution",
        "# TYPE apiserver_request_duration_seconds histogram",
        _bucket("GET", "namespaces", "0.005", 3),
        _bucket("GET", "namespaces", "0.025", 9),
        _bucket("GET", "namespaces", "+Inf", 10),
        _bucket("LIST", "configmaps", "0.005", 1),
        _bucket("LIST", "configmaps", "0.025", 4),
        _bucket("LIST", "configmaps", "+Inf", 4),
        _bucket("LIST", "secrets", "0.005", 100),
        _bucket("LIST", "secrets", "0.025", 100),
        _bucket("LIST", "secrets", "+Inf", 100),
        _bucket("PATCH", "configmaps", "0.005", 7),
        _bucket("PATCH", "configmaps", "0.025", 7),
        _bucket("PATCH", "configmaps", "+Inf", 7),
        _bucket("GET", "namespaces", "0.005", 50, subresource="status"),
        _bucket("GET", "namespaces", "0.025", 50, subresource="status"),
        _bucket("GET", "namespaces", "+Inf", 50, subresource="status"),
        "apiserver_request_duration_seconds_sum"
        '{component="apiserver",dry_run="",group="",resource="namespaces",scope="resource",'
        'subresource="",verb="GET",version="v1"} 1.5',
        'apiserver_request_total{code="200",resource="namespaces",verb="GET"} 10',
    ]
)


def test_duration_buckets_sum_only_the_verbs_and_resources_asked_for() -> None:
    buckets = latency.duration_buckets(
        APISERVER_METRICS, {"GET", "LIST"}, {"configmaps", "namespaces"}
    )
    assert buckets == {0.005: 4.0, 0.025: 13.0, INF: 14.0}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(
            {0.1: 5.0, INF: 6.0},
            {0.1: 8.0, INF: 10.0},
            {0.1: 3.0, INF: 4.0},
            id="the window holds the requests counted since the first scrape",
        ),
        pytest.param(
            {},
            {0.1: 2.0, INF: 2.0},
            {0.1: 2.0, INF: 2.0},
            id="a series that appeared during the window counts from zero",
        ),
    ],
)
def test_buckets_between(
    before: dict[float, float], after: dict[float, float], expected: dict[float, float]
) -> None:
    assert latency.buckets_between(before, after) == expected


@pytest.mark.parametrize(
    ("fraction", "buckets", "expected"),
    [
        pytest.param(
            0.5,
            {0.1: 50.0, 0.2: 100.0, INF: 100.0},
            0.1,
            id="a rank at a bucket's upper edge is that bound",
        ),
        pytest.param(
            0.99,
            {0.1: 50.0, 0.2: 100.0, INF: 100.0},
            0.198,
            id="p99 interpolates linearly inside the bucket that holds the rank",
        ),
        pytest.param(
            0.25,
            {0.1: 50.0, 0.2: 100.0, INF: 100.0},
            0.05,
            id="the first bucket interpolates from zero",
        ),
        pytest.param(
            0.99,
            {0.1: 50.0, 0.2: 90.0, INF: 100.0},
            0.2,
            id="a rank in the +Inf bucket is the highest finite bound",
        ),
        pytest.param(
            0.99,
            {0.005: 0.0, 0.025: 0.0, 0.05: 10.0, 0.1: 10.0, INF: 10.0},
            0.04975,
            id="empty buckets below the rank are skipped",
        ),
        pytest.param(0.99, {0.1: 0.0, INF: 0.0}, None, id="no request has no quantile"),
        pytest.param(0.99, {}, None, id="no bucket has no quantile"),
    ],
)
def test_histogram_quantile(
    fraction: float, buckets: dict[float, float], expected: float | None
) -> None:
    result = latency.histogram_quantile(fraction, buckets)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_histogram_quantile_refuses_a_fraction_outside_0_1() -> None:
    with pytest.raises(ValueError, match=r"fraction 1.5 is outside \[0, 1\]"):
        latency.histogram_quantile(1.5, {INF: 1.0})


def test_p99_of_a_scraped_window() -> None:
    before = latency.duration_buckets(APISERVER_METRICS, {"GET", "LIST"}, {"configmaps"})
    after = latency.duration_buckets(
        APISERVER_METRICS.replace(_bucket("LIST", "configmaps", "+Inf", 4), "").replace(
            _bucket("LIST", "configmaps", "0.025", 4), _bucket("LIST", "configmaps", "0.025", 104)
        )
        + "\n"
        + _bucket("LIST", "configmaps", "+Inf", 104),
        {"GET", "LIST"},
        {"configmaps"},
    )
    window = latency.buckets_between(before, after)
    assert window == {0.005: 0.0, 0.025: 100.0, INF: 100.0}
    assert latency.request_count(window) == 100
    assert latency.histogram_quantile(0.99, window) == pytest.approx(0.005 + 0.02 * 0.99)


@pytest.mark.parametrize(
    ("operator_args", "expected"),
    [
        pytest.param((), (50.0, 20), id="without options the documented defaults apply"),
        pytest.param(
            ("--workers=16", "--renewal-rate=5"), (5.0, 20), id="a rate given as one argument"
        ),
        pytest.param(
            ("--renewal-rate", "7.5", "--renewal-burst", "3"),
            (7.5, 3),
            id="rate and burst given as separate arguments",
        ),
    ],
)
def test_renewal_bound_reads_the_operator_command_line(
    operator_args: tuple[str, ...], expected: tuple[float, int]
) -> None:
    assert wave.renewal_bound(operator_args) == expected


def _certificate(ready: bool, fingerprint: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]
    }
    if fingerprint is not None:
        status["issuerFingerprint"] = fingerprint
    return {"metadata": {"name": "c"}, "status": status}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(_certificate(True, "new"), True, id="Ready under another CA is re-issued"),
        pytest.param(_certificate(True, "old"), False, id="Ready under the old CA is not yet"),
        pytest.param(
            _certificate(False, "new"), False, id="not Ready (the status is being written) is not"
        ),
        pytest.param(_certificate(True, None), False, id="no fingerprint is not"),
        pytest.param({"metadata": {"name": "c"}}, False, id="no status at all is not"),
    ],
)
def test_reissued_under_another_ca(body: dict[str, Any], expected: bool) -> None:
    assert wave.reissued_under_another_ca("old")(body) is expected


def test_wave_numbers() -> None:
    # 101 re-issues, the first 2 s after the trigger, then one every 0.05 s: 20 per second.
    reissued = {f"c{i}": 1002.0 + i * 0.05 for i in range(101)}
    assert wave.wave_numbers(101, 1000.0, reissued, rate=20.0, burst=1) == {
        "reissued": 101,
        "wave_seconds": 7.0,
        "first_reissue_s": 2.0,
        "reissues_per_second": 20.0,
        "ratio_to_rate_bound": 1.0,
        "bound_seconds": 5.0,
        "extrapolated_100k_seconds": 5002.0,
    }


def test_wave_numbers_without_a_reissue() -> None:
    assert wave.wave_numbers(10, 1000.0, {}, rate=20.0, burst=20) == {
        "reissued": 0,
        "wave_seconds": None,
        "reissues_per_second": None,
    }


def test_read_latency() -> None:
    client_seconds = [0.001 * i for i in range(1, 101)]
    assert wave.read_latency(client_seconds, {0.005: 0.0, 0.025: 100.0, INF: 100.0}, 2) == {
        "reads": 100,
        "errors": 2,
        "server_requests": 100,
        "server_p99_s": 0.0248,
        "server_p50_s": 0.015,
        "client_p99_s": 0.099,
        "client_p50_s": 0.0505,
    }


NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)


def _root(name: str) -> pki_ca.CertificateAuthority:
    return pki_ca.generate_root_ca(name, datetime.timedelta(days=1), keys.KeySpec(), NOW)


def _tls_secret(issuer: pki_ca.CertificateAuthority) -> dict[str, Any]:
    """A Secret whose ``tls.crt`` is a leaf signed by ``issuer``."""
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.certificate.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(hours=1))
        .sign(issuer.private_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    return {"data": {"tls.crt": base64.b64encode(pem).decode()}}


def test_leaves_signed_by_counts_only_leaves_of_that_root() -> None:
    old, new = _root("bench root"), _root("bench root")  # same name, other key
    secrets = [_tls_secret(new), _tls_secret(old), _tls_secret(new), {"data": {}}]
    assert wave.leaves_signed_by(new.certificate, secrets) == 2
    assert wave.leaves_signed_by(old.certificate, secrets) == 1


def test_the_table_has_no_wave_rows_without_a_wave() -> None:
    assert report.wave_rows(None) == []


def test_the_table_shows_the_wave() -> None:
    rows = dict(
        report.wave_rows(
            {
                "renewal_rate": 20.0,
                "renewal_burst": 20,
                "reissued": 10,
                "wave_seconds": 1.5,
                "reissues_per_second": 19.5,
                "quiet_reads": {"server_p99_s": 0.02, "client_p99_s": 0.01},
                "wave_reads": {"server_p99_s": 0.05, "client_p99_s": 0.03},
            }
        )
    )
    assert rows["wave: renewal rate bound (/s, burst)"] == "20.0, 20"
    assert rows["wave: seconds trigger -> all re-issued"] == 1.5
    assert rows["wave: read p99 quiet / wave, API server (s)"] == "0.02 / 0.05"
    assert rows["wave: read p99 quiet / wave, reader clock (s)"] == "0.01 / 0.03"
