"""The benchmark's pure helpers: percentiles, API server counters, /proc parsing, results.

No timing is asserted here: the benchmark measures, the tests only check the arithmetic.
"""

from __future__ import annotations

import base64
import datetime
import math
from typing import Any

import pytest
from bench import api_writes, floor, machine, report, soak, stats
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certmint.api import resources
from certmint.core import status

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        pytest.param(
            [3.0, 1.0, 2.0], 0.5, 2.0, id="the median of an odd count is the middle value"
        ),
        pytest.param([1.0, 2.0, 3.0, 4.0], 0.5, 2.5, id="the median of an even count interpolates"),
        pytest.param([float(v) for v in range(1, 101)], 0.99, 99.01, id="p99 of 1..100 is 99.01"),
        pytest.param([7.0], 0.99, 7.0, id="any percentile of one value is that value"),
        pytest.param([1.0, 9.0], 1.0, 9.0, id="the 100th percentile is the maximum"),
    ],
)
def test_percentile(values: list[float], fraction: float, expected: float) -> None:
    assert stats.percentile(values, fraction) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "fraction", "message"),
    [
        pytest.param([], 0.5, "percentile of no values", id="no values is an error"),
        pytest.param(
            [1.0], 1.5, "fraction 1.5 is outside [0, 1]", id="a fraction above 1 is an error"
        ),
    ],
)
def test_percentile_refuses(values: list[float], fraction: float, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        stats.percentile(values, fraction)


def _counter(code: str, resource: str, subresource: str, verb: str, value: int) -> str:
    labels = (
        f'code="{code}",component="apiserver",dry_run="",group="",resource="{resource}",'
        f'scope="resource",subresource="{subresource}",verb="{verb}",version="v1"'
    )
    return f"apiserver_request_total{{{labels}}} {value}"


APISERVER_METRICS = "\n".join(
    [
        "# HELP apiserver_request_total [STABLE] Counter of apiserver requests",
        "# TYPE apiserver_request_total counter",
        _counter("201", "secrets", "", "POST", 10),
        _counter("409", "secrets", "", "POST", 2),
        _counter("200", "certificates", "status", "PATCH", 7),
        _counter("200", "secrets", "", "LIST", 4),
        'apiserver_request_duration_seconds_count{resource="secrets",verb="POST"} 99',
        "",
    ]
)


def test_request_counts_sum_over_codes_and_ignore_other_metrics() -> None:
    assert api_writes.request_counts(APISERVER_METRICS) == {
        ("POST", "secrets", ""): 12.0,
        ("PATCH", "certificates", "status"): 7.0,
        ("LIST", "secrets", ""): 4.0,
    }


@pytest.mark.parametrize(
    ("before", "after", "own", "expected"),
    [
        pytest.param(
            {("POST", "secrets", ""): 10.0},
            {("POST", "secrets", ""): 15.0, ("PATCH", "certificates", "status"): 5.0},
            None,
            {"PATCH certificates/status": 5, "POST secrets": 5},
            id="writes are the differences, named verb then resource/subresource",
        ),
        pytest.param(
            {},
            {("GET", "secrets", ""): 9.0, ("WATCH", "secrets", ""): 1.0, ("LIST", "x", ""): 3.0},
            None,
            {},
            id="reads are not writes",
        ),
        pytest.param(
            {("POST", "certificates", ""): 1.0},
            {("POST", "certificates", ""): 101.0, ("POST", "events", ""): 100.0},
            {("POST", "certificates", ""): 100.0},
            {"POST events": 100},
            id="the benchmark's own creates are subtracted and zero entries dropped",
        ),
    ],
)
def test_writes_between(
    before: dict[api_writes.RequestKey, float],
    after: dict[api_writes.RequestKey, float],
    own: dict[api_writes.RequestKey, float] | None,
    expected: dict[str, int],
) -> None:
    assert api_writes.writes_between(before, after, own) == expected


def test_issuing_writes_leave_out_lease_and_endpoint_housekeeping() -> None:
    writes = {
        "PATCH certificates/status": 3,
        "POST endpoints": 1,
        "POST events": 3,
        "POST secrets": 3,
        "PUT leases": 6,
    }
    assert api_writes.issuing_writes(writes) == 9


def test_cpu_seconds_of_stat_reads_utime_and_stime_past_a_tricky_name() -> None:
    # The command name may hold spaces and parentheses; utime=250, stime=50 ticks.
    stat = "42 (py (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 5 1 1"
    assert machine.cpu_seconds_of_stat(stat, ticks=100) == pytest.approx(3.0)


def test_status_kilobytes_reads_one_field() -> None:
    status = "Name:\tcertmint\nVmPeak:\t  900 kB\nVmHWM:\t  153600 kB\nVmRSS:\t 100 kB\n"
    assert (
        machine.status_kilobytes(status, "VmHWM"),
        machine.status_kilobytes(status, "Nope"),
    ) == (
        153600,
        0,
    )


def test_machine_busy_seconds_leave_out_idle_and_iowait() -> None:
    # user nice system idle iowait irq softirq steal guest guest_nice
    proc_stat = "cpu  100 10 50 1000 40 5 5 0 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    assert machine.machine_busy_seconds(proc_stat, ticks=10) == pytest.approx(17.0)


def test_throughput_and_latencies_run_from_the_first_create_to_the_last_ready() -> None:
    created = {"a": 100.0, "b": 101.0, "c": 102.0}
    ready = {"a": 103.0, "b": 102.5}
    assert (stats.latencies(created, ready), stats.throughput(created, ready)) == (
        [3.0, 1.5],
        (3.0, 2 / 3.0),
    )


def test_throughput_of_nothing_ready_is_not_a_number() -> None:
    seconds, rate = stats.throughput({"a": 1.0}, {})
    assert (math.isnan(seconds), rate) == (True, 0.0)


def _phase(rate: float) -> dict[str, Any]:
    return {
        "n": 2,
        "ready": 2,
        "seconds_to_all_ready": 4.0,
        "certs_per_second": rate,
        "p50_latency_s": 1.0,
        "p99_latency_s": 2.0,
        "api_writes_per_cert": 3.0,
        "api_writes": {"POST secrets": 2},
    }


@pytest.mark.parametrize(
    ("floor_phase", "ratio"),
    [
        pytest.param(_phase(40.0), 0.5, id="the ratio is certmint's rate over the floor's"),
        pytest.param(None, None, id="without a floor there is no ratio"),
    ],
)
def test_results_document(floor_phase: dict[str, Any] | None, ratio: float | None) -> None:
    document = report.results_document(
        _phase(20.0), floor_phase, {"operator_peak_rss_mb": 99.0, "operator_cpu_seconds": 1.5}
    )
    assert document == {
        **_phase(20.0),
        "operator_peak_rss_mb": 99.0,
        "operator_cpu_seconds": 1.5,
        "floor_certs_per_second": floor_phase["certs_per_second"] if floor_phase else None,
        "ratio_to_floor": ratio,
        "floor": floor_phase,
        "api_ceiling_certs_per_second": None,
        "ratio_to_api_ceiling": None,
        "scrape_cpu_seconds": None,
        "operator_cpu_ms_per_cert": 750.0,
    }


def test_certmint_is_reported_as_a_ratio_of_the_api_ceiling() -> None:
    extra = {
        "operator_cpu_seconds": 3.0,
        "scrape_cpu_seconds": 0.25,
        "api_ceiling": {"api_ceiling_certs_per_second": 80.0},
    }
    document = report.results_document(_phase(20.0), None, extra)
    assert {key: document[key] for key in report.ceiling_fields(_phase(20.0), extra)} == {
        "api_ceiling_certs_per_second": 80.0,
        "ratio_to_api_ceiling": 0.25,
        "scrape_cpu_seconds": 0.25,
        "operator_cpu_ms_per_cert": 1500.0,
    }


def test_phase_summary_counts_issuing_writes_per_ready_certificate() -> None:
    summary = report.phase_summary(
        2,
        {"a": 0.0, "b": 1.0},
        {"a": 2.0, "b": 4.0},
        {"POST secrets": 2, "PATCH certificates/status": 2, "POST events": 2, "PUT leases": 5},
    )
    assert summary == {
        "n": 2,
        "ready": 2,
        "seconds_to_all_ready": 4.0,
        "certs_per_second": 0.5,
        "p50_latency_s": 2.5,
        "p99_latency_s": 2.99,
        "api_writes_per_cert": 3.0,
        "api_writes": {
            "POST secrets": 2,
            "PATCH certificates/status": 2,
            "POST events": 2,
            "PUT leases": 5,
        },
    }


def test_the_floor_signs_a_leaf_for_the_name_with_a_matching_key() -> None:
    ca = floor.generate_ca(NOW)
    certificate_pem, key_pem = floor.issue_leaf(ca, "c00001.bench.svc", NOW)
    leaf = x509.load_pem_x509_certificate(certificate_pem)
    key = load_key(key_pem)
    leaf.verify_directly_issued_by(ca.certificate)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert (
        san.get_values_for_type(x509.DNSName),
        key.public_key() == leaf.public_key(),
        leaf.not_valid_after_utc - leaf.not_valid_before_utc,
    ) == (["c00001.bench.svc"], True, floor.LEAF_LIFETIME + floor.BACKDATE)


def load_key(key_pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


#: What certmint writes on every Secret it issues (core/secret_format.py, secret_body).
CERTMINT_SECRET_ANNOTATIONS = {
    resources.ANNOTATION_CERTIFICATE_NAME,
    resources.ANNOTATION_CERTIFICATE_UID,
    resources.ANNOTATION_ISSUER_NAME,
    resources.ANNOTATION_ISSUER_KIND,
    resources.ANNOTATION_IDENTITY,
    resources.ANNOTATION_SERIAL,
    resources.ANNOTATION_REVISION,
    resources.ANNOTATION_SPEC_HASH,
    resources.ANNOTATION_DELETION_POLICY,
}


def test_the_floor_secret_has_certmint_s_shape_but_not_its_ownership_label() -> None:
    ca = floor.generate_ca(NOW)
    certificate_pem, key_pem = floor.issue_leaf(ca, "c1.ns.svc", NOW)
    body = floor.secret_body("ns", "c1", certificate_pem, key_pem, ca.certificate_pem)

    metadata = body["metadata"]
    assert (metadata["name"], metadata["namespace"], body["type"]) == (
        "c1-tls",
        "ns",
        "kubernetes.io/tls",
    )
    assert set(metadata["annotations"]) == CERTMINT_SECRET_ANNOTATIONS
    assert metadata["annotations"][resources.ANNOTATION_SERIAL] == format(
        x509.load_pem_x509_certificate(certificate_pem).serial_number, "x"
    )
    assert resources.LABEL_CERTIFICATE_NAME not in metadata["labels"]
    assert body["data"] == {
        "tls.crt": base64.b64encode(certificate_pem).decode(),
        "tls.key": base64.b64encode(key_pem).decode(),
        "ca.crt": base64.b64encode(ca.certificate_pem).decode(),
    }


def test_the_floor_status_patch_writes_every_field_certmint_writes_after_an_issuance() -> None:
    patch = floor.status_patch(NOW)["status"]
    parsed = status.CertificateStatus.parse(patch)

    # Fields of a failing or identity-bearing Certificate only.
    absent = {"identity", "failedIssuanceAttempts", "lastFailureTime"}
    written = {key for key, value in parsed.to_json().items() if value is not None}
    assert set(patch) == written == set(parsed.to_json()) - absent
    assert [(c.type, c.status) for c in parsed.conditions] == [
        ("Ready", "True"),
        ("Issuing", "False"),
    ]
    assert parsed.not_after == NOW + floor.LEAF_LIFETIME


def _leaf_pem(not_after: datetime.datetime) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "soak")])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - datetime.timedelta(minutes=1))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(leaf.public_bytes(serialization.Encoding.PEM)).decode()


def _soak_certificate(name: str, ready: str, not_after: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"secretName": f"{name}-tls"},
        "status": {"conditions": [{"type": "Ready", "status": ready}], "notAfter": not_after},
    }


def test_the_soak_finds_certificates_ready_past_their_expiry() -> None:
    past, future = NOW - datetime.timedelta(seconds=1), NOW + datetime.timedelta(seconds=30)
    certificates = [
        _soak_certificate("fresh", "True", "2026-01-01T12:00:30Z"),
        _soak_certificate("stale-status", "True", "2026-01-01T11:59:59Z"),
        _soak_certificate("stale-secret", "True", "2026-01-01T12:00:30Z"),
        _soak_certificate("not-ready", "False", "2026-01-01T11:00:00Z"),
    ]
    secrets = {
        "fresh-tls": {"data": {"tls.crt": _leaf_pem(future)}},
        "stale-status-tls": {"data": {"tls.crt": _leaf_pem(future)}},
        "stale-secret-tls": {"data": {"tls.crt": _leaf_pem(past)}},
        "not-ready-tls": {"data": {"tls.crt": _leaf_pem(past)}},
    }
    assert soak.expired_while_ready(certificates, secrets, NOW) == [
        "2026-01-01T12:00:00+00:00 stale-status: Ready, status.notAfter 2026-01-01T11:59:59+00:00",
        "2026-01-01T12:00:00+00:00 stale-secret: Ready, the Secret's leaf "
        "2026-01-01T11:59:59+00:00",
    ]
