"""Observability end to end: /metrics, Events, JSON logs, and a real Prometheus scraping it all.

Every test runs the real operator against the real control plane. The last ones start
Debian's Prometheus on loopback, point it at the running operator with the alert rules
from deploy/monitoring, and check what an SRE would see: every dashboard expression
returns data, and a certificate whose renewal is blocked fires its alert on time.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import math
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from kubernetes import client
from prometheus_client import parser

from certmint.pki import ca as pki_ca
from certmint.pki import decode, keys
from tests.integration.support import (
    BIN,
    GROUP,
    VERSION,
    OperatorProcess,
    ca_issuer,
    certificate,
    condition,
    events_for,
    get_certificate,
    patch_certificate,
    read_secret,
    service_account,
    wait_for_condition,
    wait_until,
)
from tests.monitoring import prometheus_server

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"

#: (metric name, sorted label pairs) -> value: one scrape, comparable as a whole.
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]
CERTIFICATE_FAMILIES = frozenset(
    {
        "certmint_certificate_ready_status",
        "certmint_certificate_not_after_timestamp_seconds",
        "certmint_certificate_renewal_timestamp_seconds",
    }
)
AGGREGATE_FAMILIES = frozenset(
    {
        "certmint_certificates",
        "certmint_certificates_expiring",
        "certmint_certificates_renewal_overdue",
        "certmint_certificates_earliest_not_after_timestamp_seconds",
    }
)
RENEW_REQUESTED = "certmint.io/renew-requested-at"
ISSUANCE_FAMILIES = frozenset(
    {"certmint_issuance_total", "certmint_issuance_duration_seconds_count"}
)


# Helpers ------------------------------------------------------------------------------
def unique(prefix: str) -> str:
    """A name no other test uses: issuance counters are labelled by issuer name only."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def key(metric: str, /, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (metric, tuple(sorted(labels.items())))


def scrape(
    process: OperatorProcess, families: frozenset[str] | None = None, **where: str
) -> Series:
    """One scrape of /metrics: the samples of ``families`` whose labels include ``where``."""
    return {
        key(sample.name, **sample.labels): sample.value
        for family in parser.text_string_to_metric_families(process.metrics())
        for sample in family.samples
        if (families is None or sample.name in families)
        and all(sample.labels.get(label) == value for label, value in where.items())
    }


def certificate_series(process: OperatorProcess, namespace: str, name: str) -> Series:
    return scrape(process, CERTIFICATE_FAMILIES, namespace=namespace, name=name)


def issuance_series(process: OperatorProcess, issuer: str) -> Series:
    """The issuer's issuance series that counted something.

    Every issuer's series exist from its first reconciliation at zero (so that ``rate()``
    sees the first event); the zeros are checked once, in `test_issuance_series_start_at_zero`.
    """
    series = scrape(process, ISSUANCE_FAMILIES, issuer_name=issuer)
    return {name: value for name, value in series.items() if value}


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def delete_certificate(kube: client.ApiClient, namespace: str, name: str) -> None:
    """Deletes a Certificate (namespaces never finish terminating without a controller-manager,
    so a Certificate left behind keeps the session operator retrying it)."""
    try:
        client.CustomObjectsApi(kube).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "certificates", name
        )
    except client.ApiException as err:
        if err.status != 404:
            raise


def issuer_condition(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "issuers", name
    )
    return condition(cast("dict[str, Any]", body))


def renew(kubeconfig: Path, namespace: str, name: str) -> None:
    """``certmint renew NAMESPACE/NAME``, as a user runs it."""
    subprocess.run(
        [str(BIN / "certmint"), "--kubeconfig", str(kubeconfig), "renew", f"{namespace}/{name}"],
        check=True,
        capture_output=True,
        timeout=30,
    )


def request_renewal(kube: client.ApiClient, namespace: str, name: str) -> None:
    """What ``certmint renew`` writes, without starting a process (fixtures use it for speed)."""
    requested = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch_certificate(
        kube, namespace, name, {"metadata": {"annotations": {RENEW_REQUESTED: requested}}}
    )


def new_namespace(kube: client.ApiClient, prefix: str) -> str:
    name = unique(prefix)
    client.CoreV1Api(kube).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


def events_with_reason(
    kube: client.ApiClient, namespace: str, name: str, reason: str
) -> list[client.CoreV1Event]:
    return [event for event in events_for(kube, namespace, name) if event.reason == reason]


def stays_the_same(probe: Callable[[], T], *, seconds: float) -> T:
    """Watches ``probe`` for a window of ``seconds`` and fails as soon as its value changes.

    This is an observation window, not a wait for something to happen: it is how a test
    shows that nothing more happens (no repeated Event) while nothing changes.
    """
    first = probe()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current = probe()
        assert current == first, f"changed during the window: {first!r} -> {current!r}"
        time.sleep(0.25)  # polling interval inside the observation window
    return first


# The certificate that expires --------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ShortLived:
    """A 1-minute Certificate whose issuer lost its CA Secret right after issuing it.

    Attributes:
        namespace: Its namespace.
        issuer: Its Issuer, now CASecretMissing, so the renewal cannot happen.
        name: The Certificate's name.
        issued: Its status right after issuance.
    """

    namespace: str
    issuer: str
    name: str
    issued: Mapping[str, Any]

    @property
    def not_after(self) -> datetime:
        return datetime.fromisoformat(str(self.issued["notAfter"]).replace("Z", "+00:00"))

    def until_expired_plus(self, seconds: float) -> float:
        """A timeout that ends ``seconds`` after the certificate expires."""
        return max((self.not_after - datetime.now(UTC)).total_seconds(), 0.0) + seconds


def own_ca_secret(kube: client.ApiClient, namespace: str, name: str) -> None:
    """A CA Secret made by the test, so that the issuer cannot re-create it once deleted."""
    authority = pki_ca.generate_root_ca(
        f"{namespace} blocked root",
        timedelta(days=30),
        keys.KeySpec(keys.KeyAlgorithm.ECDSA, 256),
        datetime.now(UTC),
    )
    pem = {
        "tls.crt": decode.certificates_to_pem((authority.certificate,)),
        "tls.key": keys.private_key_to_pem(authority.private_key),
    }
    client.CoreV1Api(kube).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            type="kubernetes.io/tls",
            data={field: base64.b64encode(value).decode() for field, value in pem.items()},
        ),
    )


@pytest.fixture(scope="module", autouse=True)
def short_lived(kube: client.ApiClient, operator: OperatorProcess) -> Iterator[ShortLived]:
    """Issues the 1-minute certificate, then deletes its issuer's CA Secret.

    Module-wide and first: its minute runs out while the other tests of this module run,
    so the Prometheus tests at the end wait for its expiry only for what is left of it.
    """
    if not operator.running:
        operator.start()
    namespace, issuer = new_namespace(kube, "obs-blocked"), unique("blocked")
    own_ca_secret(kube, namespace, f"{issuer}-ca")
    ca_issuer(kube, namespace, issuer, generate=False)
    certificate(kube, namespace, "short", issuer, duration="1m")
    issued = wait_for_condition(kube, namespace, "short", timeout=20)["status"]
    client.CoreV1Api(kube).delete_namespaced_secret(f"{issuer}-ca", namespace)
    wait_until(
        lambda: issuer_condition(kube, namespace, issuer).get("reason") == "CASecretMissing",
        timeout=15,
        what="the issuer to notice that its CA Secret is gone",
    )
    yield ShortLived(namespace, issuer, "short", issued)
    delete_certificate(kube, namespace, "short")


# /metrics -----------------------------------------------------------------------------
def test_metrics_follow_a_certificate_from_issuance_to_deletion(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    """With the default ``--per-certificate-metrics=attention``, a healthy certificate is
    counted in its namespace's and issuer's aggregates and has no series of its own."""
    issuer = unique("metrics")
    ca_issuer(kube, namespace, issuer)
    certificate(kube, namespace, "web", issuer, duration="2h")
    status = wait_for_condition(kube, namespace, "web")["status"]
    reason = next(each for each in status["conditions"] if each["type"] == "Ready")["reason"]
    group = {"namespace": namespace, "issuer_name": issuer, "issuer_kind": "Issuer"}
    earliest = key("certmint_certificates_earliest_not_after_timestamp_seconds", **group)
    wait_until(
        lambda: earliest in scrape(running_operator, AGGREGATE_FAMILIES, **group),
        timeout=10,
        what="the certificate's namespace and issuer in the aggregates",
    )

    issued = {
        "certificate": certificate_series(running_operator, namespace, "web"),
        "aggregates": scrape(running_operator, AGGREGATE_FAMILIES, **group),
        "issuance": issuance_series(running_operator, issuer),
    }
    delete_certificate(kube, namespace, "web")
    wait_until(
        lambda: not scrape(running_operator, AGGREGATE_FAMILIES, **group),
        timeout=30,
        what="the deleted certificate's aggregates to go",
    )
    deleted = {
        "certificate": certificate_series(running_operator, namespace, "web"),
        "aggregates": scrape(running_operator, AGGREGATE_FAMILIES, **group),
        "issuance": issuance_series(running_operator, issuer),
    }

    counters = {
        key("certmint_issuance_total", issuer_name=issuer, issuer_kind="Issuer", result="success"):
            1.0,
        key("certmint_issuance_duration_seconds_count", issuer_name=issuer, issuer_kind="Issuer"):
            1.0,
    }  # fmt: skip
    windows = {"0": 0.0, "3600": 0.0, "86400": 1.0, "604800": 1.0, "2592000": 1.0, "+Inf": 1.0}
    assert issued == {
        "certificate": {},
        "aggregates": {
            key("certmint_certificates", **group, condition="True", reason=reason): 1.0,
            **{
                key("certmint_certificates_expiring", **group, le=window): count
                for window, count in windows.items()
            },
            key("certmint_certificates_renewal_overdue", **group): 0.0,
            earliest: epoch(status["notAfter"]),
        },
        "issuance": counters,
    }
    assert deleted == {"certificate": {}, "aggregates": {}, "issuance": counters}


def test_issuance_series_start_at_zero(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    issuer = unique("zeros")
    ca_issuer(kube, namespace, issuer)

    series = wait_until(
        lambda: scrape(running_operator, ISSUANCE_FAMILIES, issuer_name=issuer),
        what="the issuer's series",
    )

    assert series == {
        key("certmint_issuance_total", issuer_name=issuer, issuer_kind="Issuer", result=result): 0.0
        for result in ("success", "failure", "denied")
    } | {
        key(
            "certmint_issuance_duration_seconds_count", issuer_name=issuer, issuer_kind="Issuer"
        ): 0.0
    }


def test_a_denial_is_counted_by_its_policy_reason(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    issuer = unique("denials")
    ca_issuer(kube, namespace, issuer)
    denials = key("certmint_policy_denials_total", reason="DNSNameNotAllowed")
    before = scrape(running_operator).get(denials, 0.0)

    certificate(kube, namespace, "db", issuer, dnsNames=["db.elsewhere.svc"])
    wait_for_condition(kube, namespace, "db", status="False", reason="PolicyViolation")
    wait_until(
        lambda: scrape(running_operator).get(denials, 0.0) > before,
        timeout=10,
        what="the denial counter to move",
    )

    labels = {"name": "db", "namespace": namespace, "issuer_name": issuer, "issuer_kind": "Issuer"}
    assert {
        "denials": scrape(running_operator)[denials] - before,
        "issuance": issuance_series(running_operator, issuer),
        "certificate": certificate_series(running_operator, namespace, "db"),
    } == {
        "denials": 1.0,
        "issuance": {
            key(
                "certmint_issuance_total", issuer_name=issuer, issuer_kind="Issuer", result="denied"
            ): 1.0,
        },
        "certificate": {
            key("certmint_certificate_ready_status", **labels, condition="True"): 0.0,
            key("certmint_certificate_ready_status", **labels, condition="False"): 1.0,
            key("certmint_certificate_ready_status", **labels, condition="Unknown"): 0.0,
        },
    }


def test_healthz_and_the_operator_health_series(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    started = time.monotonic()
    issuer = unique("health")
    ca_issuer(kube, namespace, issuer)
    service_account(kube, namespace, "api")
    certificate(kube, namespace, "api", issuer, serviceAccountName="api")
    wait_for_condition(kube, namespace, "api")
    watched = ("certificates", "issuers", "secrets", "serviceaccounts")

    def ages() -> dict[str, float]:
        series = scrape(running_operator, frozenset({"certmint_watch_last_event_age_seconds"}))
        return {dict(labels)["resource"]: value for (_, labels), value in series.items()}

    def fresh() -> dict[str, float] | None:
        # An age below the time since this test began means an event arrived since then.
        current = ages()
        recent = all(current.get(kind, math.inf) <= time.monotonic() - started for kind in watched)
        return current if recent else None

    wait_until(fresh, timeout=10, what="a watch event of every kind this test touched")
    assert {
        "healthz": running_operator.get("/healthz"),
        "operator": scrape(
            running_operator, frozenset({"certmint_leader", "certmint_cache_synced"})
        ),
    } == {
        "healthz": (200, "ok\n"),
        "operator": {key("certmint_leader"): 1.0, key("certmint_cache_synced"): 1.0},
    }


# Events -------------------------------------------------------------------------------
def test_a_certificate_gets_issued_then_renewed_events(
    kube: client.ApiClient, namespace: str, kubeconfig_path: Path
) -> None:
    issuer = unique("events")
    ca_issuer(kube, namespace, issuer)
    certificate(kube, namespace, "web", issuer)
    first = wait_for_condition(kube, namespace, "web")["status"]

    renew(kubeconfig_path, namespace, "web")
    body = wait_for_condition(kube, namespace, "web", where=lambda b: b["status"]["revision"] == 2)
    events = wait_until(
        lambda: found if len(found := events_for(kube, namespace, "web")) >= 2 else None,
        timeout=10,
        what="two events",
    )

    requested = body["metadata"]["annotations"][RENEW_REQUESTED]
    summary = sorted(
        (
            event.type,
            event.reason,
            str(event.message).split(", valid until ")[0],
            str(event.message).split(": ", 1)[1],
            event.count,
        )
        for event in events
    )
    assert summary == [
        (
            "Normal",
            "Issued",
            f"issued serial {first['serialNumber']} (revision 1)",
            'Secret "web-tls" does not exist',
            1,
        ),
        (
            "Normal",
            "Renewed",
            f"issued serial {body['status']['serialNumber']} (revision 2)",
            f"a re-issue was requested at {requested}",
            1,
        ),
    ]


def test_a_denial_is_one_warning_event_however_often_it_is_reconciled(
    kube: client.ApiClient, namespace: str
) -> None:
    issuer = unique("denied")
    ca_issuer(kube, namespace, issuer)
    certificate(kube, namespace, "db", issuer, dnsNames=["db.elsewhere.svc"])
    denied = wait_for_condition(kube, namespace, "db", status="False", reason="PolicyViolation")
    wait_until(
        lambda: events_with_reason(kube, namespace, "db", "Denied"),
        timeout=10,
        what="the Denied event",
    )

    # Spec changes that keep the same denial: each is reconciled (the condition's
    # observedGeneration follows) and must not post the Denied event again.
    for generation, duration in ((2, "2h"), (3, "3h"), (4, "4h")):
        patch_certificate(kube, namespace, "db", {"spec": {"duration": duration}})

        def observed(body: dict[str, Any], generation: int = generation) -> bool:
            return bool(condition(body)["observedGeneration"] == generation)

        wait_for_condition(
            kube, namespace, "db", status="False", reason="PolicyViolation", where=observed
        )

    events = stays_the_same(
        lambda: [
            (event.type, event.reason, event.message, event.count)
            for event in events_for(kube, namespace, "db")
        ],
        seconds=3,
    )
    message = condition(denied)["message"]
    assert (message.split(":")[0], events) == (
        "DNSNameNotAllowed",
        [("Warning", "Denied", message, 1)],
    )


@pytest.fixture
def failing_certificate(kube: client.ApiClient, namespace: str) -> Iterator[tuple[str, str]]:
    """An Issuer whose CA Secret does not exist, and a Certificate that uses it."""
    issuer = unique("nosecret")
    ca_issuer(kube, namespace, issuer, generate=False)
    certificate(kube, namespace, "web", issuer)
    yield issuer, "web"
    delete_certificate(kube, namespace, "web")


def failed_attempts(kube: client.ApiClient, namespace: str, name: str) -> int:
    return int(
        get_certificate(kube, namespace, name).get("status", {}).get("failedIssuanceAttempts") or 0
    )


def test_a_missing_ca_secret_is_one_event_on_the_issuer_and_failed_on_its_certificate(
    kube: client.ApiClient, namespace: str, failing_certificate: tuple[str, str]
) -> None:
    issuer, name = failing_certificate
    # Retries back off 1, 2, 4 s (test knobs); the issuer re-checks its Secret as often.
    wait_until(lambda: failed_attempts(kube, namespace, name) >= 4, timeout=30, what="4 attempts")

    issuer_events = stays_the_same(
        lambda: [
            (event.type, event.reason, event.message)
            for event in events_for(kube, namespace, issuer)
        ],
        seconds=2,
    )
    failed = events_with_reason(kube, namespace, name, "Failed")
    missing = (
        f'CA Secret "{namespace}/{issuer}-ca" does not exist: create a kubernetes.io/tls Secret '
        "with tls.crt and tls.key, or set spec.ca.generate"
    )
    assert {
        "issuer": issuer_events,
        "issuer condition": issuer_condition(kube, namespace, issuer)["reason"],
        "certificate": sorted({(event.type, event.reason, event.message) for event in failed}),
    } == {
        "issuer": [("Warning", "CASecretMissing", missing)],
        "issuer condition": "CASecretMissing",
        "certificate": [
            (
                "Warning",
                "Failed",
                f'Issuer "{issuer}" is not ready (CASecretMissing): {missing} '
                '(needed: Secret "web-tls" does not exist)',
            )
        ],
    }


class RepeatedEventError(AssertionError):
    """The same Event was posted again as a new object instead of being counted."""


def test_a_failing_certificate_is_one_failed_event_however_often_it_is_retried(
    kube: client.ApiClient, namespace: str, failing_certificate: tuple[str, str]
) -> None:
    _, name = failing_certificate
    wait_until(lambda: failed_attempts(kube, namespace, name) >= 4, timeout=30, what="4 attempts")

    failed = stays_the_same(
        lambda: [
            (event.type, event.message)
            for event in events_with_reason(kube, namespace, name, "Failed")
        ],
        seconds=1,
    )

    if len(failed) != 1:
        raise RepeatedEventError(f"{len(failed)} Failed Events after 4 attempts: {failed}")


# --log-format json --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class JsonRun:
    """What an operator started with ``--log-format json`` logged, and the keys it handled.

    Attributes:
        namespace: Where the scenario ran.
        issuers: The healthy issuer's and the broken issuer's names.
        lines: Every line of the operator's output.
        key_material: Private keys it wrote (the leaf's two revisions and the CA), in the
            encodings a leak would take: base64 of the PEM (the Secret's data) and the PEM
            body lines.
    """

    namespace: str
    issuers: tuple[str, str]
    lines: tuple[str, ...]
    key_material: tuple[str, ...]

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


def private_key_forms(secret: client.V1Secret) -> list[str]:
    key_b64 = str((secret.data or {})["tls.key"])
    pem_body = [
        line for line in base64.b64decode(key_b64).decode().splitlines() if "-----" not in line
    ]
    return [key_b64, *pem_body]


@pytest.fixture(scope="module")
def json_run(
    kube: client.ApiClient,
    operator: OperatorProcess,
    kubeconfig_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> JsonRun:
    """Runs a scenario under a ``--log-format=json`` operator, the session one stopped."""
    namespace = new_namespace(kube, "obs-json")
    healthy, broken = unique("json"), unique("json-broken")
    process = OperatorProcess(kubeconfig_path, tmp_path_factory.mktemp("json"), name="json")
    operator.stop()
    try:
        process.start("-A", "--log-format=json")
        wait_until(
            lambda: "certmint_leader 1.0" in process.metrics().splitlines(),
            timeout=30,
            what="the json operator to lead",
        )
        ca_issuer(kube, namespace, healthy)
        ca_issuer(kube, namespace, broken, generate=False)
        # Issuers and Certificates arrive through separate watches: the issuers must have
        # been seen first, or "stuck" may log a passing IssuerNotFound.
        for issuer in (healthy, broken):
            wait_until(
                functools.partial(issuer_condition, kube, namespace, issuer),
                what=f"the operator to see Issuer {issuer}",
            )
        certificate(kube, namespace, "web", healthy)
        certificate(kube, namespace, "denied", healthy, dnsNames=["db.elsewhere.svc"])
        certificate(kube, namespace, "stuck", broken)
        wait_for_condition(kube, namespace, "web")
        first = read_secret(kube, namespace, "web-tls")
        request_renewal(kube, namespace, "web")
        wait_for_condition(kube, namespace, "web", where=lambda b: b["status"]["revision"] == 2)
        second = read_secret(kube, namespace, "web-tls")
        ca = read_secret(kube, namespace, f"{healthy}-ca")
        wait_for_condition(kube, namespace, "denied", status="False", reason="PolicyViolation")
        wait_until(lambda: failed_attempts(kube, namespace, "stuck") >= 1, what="a failure")
        wait_until(
            lambda: process.log().count(f'"namespace": "{namespace}"') >= 4,
            timeout=10,
            what="the scenario's log lines",
        )
        delete_certificate(kube, namespace, "stuck")
    finally:
        process.stop()
        operator.start()
    secrets = [secret for secret in (first, second, ca) if secret is not None]
    return JsonRun(
        namespace=namespace,
        issuers=(healthy, broken),
        lines=tuple(process.log().splitlines()),
        key_material=tuple(form for secret in secrets for form in private_key_forms(secret)),
    )


def test_every_json_log_line_is_one_json_object_with_time_level_logger_and_message(
    json_run: JsonRun,
) -> None:
    def problem(line: str) -> str | None:
        try:
            entry = json.loads(line)
        except ValueError:
            return f"not JSON: {line}"
        if not isinstance(entry, dict) or not {"time", "level", "logger", "message"} <= set(entry):
            return f"not a log object: {line}"
        return None

    assert len(json_run.lines) > 5
    assert [found for line in json_run.lines if (found := problem(line))] == []


def test_json_lines_about_a_certificate_name_its_namespace_issuer_and_reason(
    json_run: JsonRun,
) -> None:
    healthy, broken = json_run.issuers
    about_certificates = {
        (entry.get("namespace"), entry["certificate"], entry.get("issuer"), entry.get("reason"))
        for entry in json_run.entries()
        if entry.get("certificate") and entry.get("namespace") == json_run.namespace
    }
    issued = [
        entry["reason"]
        for entry in json_run.entries()
        if entry["message"].startswith("issued serial ") and entry.get("certificate") == "web"
        and entry.get("namespace") == json_run.namespace
    ]  # fmt: skip
    ns = json_run.namespace
    assert (sorted(about_certificates), issued) == (
        [
            (ns, "denied", f"Issuer/{healthy}", "PolicyViolation"),
            (ns, "stuck", f"Issuer/{broken}", "IssuerNotReady"),
            (ns, "web", f"Issuer/{healthy}", "RenewRequested"),
            (ns, "web", f"Issuer/{healthy}", "SecretMissing"),
        ],
        ["SecretMissing", "RenewRequested"],
    )


def test_json_lines_about_an_issuer_name_it_with_its_namespace_and_the_reason(
    json_run: JsonRun,
) -> None:
    ns = json_run.namespace
    healthy, broken = json_run.issuers
    about_issuers = sorted(
        (entry["namespace"], entry["issuer"], entry.get("reason"))
        for entry in json_run.entries()
        if entry.get("namespace") == ns
        and str(entry.get("issuer", "")).startswith("Issuer/")
        and "certificate" not in entry
    )
    assert about_issuers == sorted(
        [
            (ns, f"Issuer/{healthy}", "CAGenerated"),
            (ns, f"Issuer/{healthy}", "CAReady"),
            (ns, f"Issuer/{broken}", "CASecretMissing"),
        ]
    )


def test_no_log_line_holds_private_key_material(json_run: JsonRun) -> None:
    log = "\n".join(json_run.lines)
    leaked = [form[:12] + "..." for form in json_run.key_material if form in log]
    assert (len(json_run.key_material) > 6, "PRIVATE KEY" in log, leaked) == (True, False, [])


# A real Prometheus ---------------------------------------------------------------------
def load_dashboard_targets() -> list[tuple[str, str]]:
    """(panel title [refId], PromQL) of every query in the Grafana dashboard."""
    dashboard = json.loads((MONITORING / "dashboard.json").read_text(encoding="utf-8"))

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


DASHBOARD_TARGETS = load_dashboard_targets()
FALLBACK = re.compile(r"\s+or\s+vector\(0\)\s*$")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclasses.dataclass(frozen=True)
class Fleet:
    """Certificates in every state a dashboard panel shows, scraped by a real Prometheus.

    Attributes:
        prometheus: The server, scraping the session operator every second.
        namespace: The healthy fleet (lifetimes from 30 minutes to 41 days), two denied
            Certificates and one whose issuer has no CA Secret.
        issuers: The fleet's issuers: the healthy one and the one without a CA Secret.
        short: The 1-minute certificate that expires.
    """

    prometheus: prometheus_server.PrometheusServer
    namespace: str
    issuers: tuple[str, str]
    short: ShortLived


def query_now(prometheus: prometheus_server.PrometheusServer, expr: str) -> list[dict[str, Any]]:
    response = prometheus.query(expr)
    assert response.status_code == 200, (expr, response.body)
    result: list[dict[str, Any]] = response.body["data"]["result"]
    return result


@pytest.fixture(scope="module")
def fleet(
    kube: client.ApiClient,
    operator: OperatorProcess,
    short_lived: ShortLived,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    """Starts Prometheus on the running operator, then builds the fleet it watches."""
    if not operator.running:
        operator.start()
    workdir = tmp_path_factory.mktemp("prometheus")
    rules = prometheus_server.write_rules_file(
        MONITORING / "prometheusrule.yaml", workdir / "rules.yaml"
    )
    scrape_config = {
        "job_name": "certmint",  # the name the OperatorDown and leader rules select
        "honor_labels": True,  # keep the Certificate's own namespace label, as deployed
        "static_configs": [{"targets": [f"127.0.0.1:{operator.metrics_port}"]}],
    }
    namespace = new_namespace(kube, "obs-fleet")
    healthy, missing = unique("fleet"), unique("nocas")
    with prometheus_server.PrometheusServer(
        workdir, [scrape_config], scrape_interval="1s", rule_files=[rules]
    ) as prometheus:
        ca_issuer(kube, namespace, healthy, policy={"maxDuration": "2000h"})
        ca_issuer(kube, namespace, missing, generate=False)
        lifetimes = {"m30": "30m", "h2": "2h", "d3": "72h", "d10": "240h", "d41": "1000h"}
        for name, duration in lifetimes.items():
            certificate(kube, namespace, name, healthy, duration=duration)
        certificate(kube, namespace, "denied-1", healthy, dnsNames=["db.elsewhere.svc"])
        certificate(kube, namespace, "stuck", missing)
        for name in lifetimes:
            wait_for_condition(kube, namespace, name, timeout=30)
        wait_for_condition(kube, namespace, "denied-1", status="False", reason="PolicyViolation")

        # Prometheus takes the first sample of a new counter series as its baseline, so a
        # rate() only moves for what happens after that. Once it has the series, issue
        # and deny once more so that the rate and latency panels have something to show.
        wait_until(
            lambda: query_now(
                prometheus,
                f'certmint_issuance_total{{issuer_name="{healthy}", result=~"success|denied"}}',
            )[1:],
            timeout=15,
            what="Prometheus to scrape the fleet's counters",
        )
        request_renewal(kube, namespace, "h2")
        certificate(kube, namespace, "denied-2", healthy, dnsNames=["db.elsewhere.svc"])
        wait_for_condition(kube, namespace, "h2", where=lambda b: b["status"]["revision"] == 2)
        wait_for_condition(kube, namespace, "denied-2", status="False", reason="PolicyViolation")

        yield Fleet(prometheus, namespace, (healthy, missing), short_lived)
    delete_certificate(kube, namespace, "stuck")


def as_queried(expr: str, fleet: Fleet) -> str:
    """A dashboard expression as Grafana sends it, narrowed to this test's objects.

    The ``or vector(0)`` fallback of the stat panels is dropped: with it an expression
    returns data whatever the operator exports.
    """
    values = {
        "namespace": f"{fleet.namespace}|{fleet.short.namespace}",
        "issuer": "|".join((*fleet.issuers, fleet.short.issuer)),
        "__rate_interval": "5m",
        "__interval": "15s",
        "__range": "1h",
    }
    return VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], FALLBACK.sub("", expr))


@pytest.mark.parametrize(
    ("where", "expr"),
    DASHBOARD_TARGETS,
    ids=[f"the dashboard's {where} returns data" for where, _ in DASHBOARD_TARGETS],
)
def test_every_dashboard_expression_returns_data_from_the_running_operator(
    fleet: Fleet, where: str, expr: str
) -> None:
    query = as_queried(expr, fleet)

    def numbers() -> list[float] | None:
        values = [float(item["value"][1]) for item in query_now(fleet.prometheus, query)]
        return values if values and all(math.isfinite(value) for value in values) else None

    # The "expired" panels only have data once the 1-minute certificate has expired.
    values = wait_until(numbers, timeout=fleet.short.until_expired_plus(30), what=query)
    assert len(values) >= 1


def alerts(fleet: Fleet) -> list[dict[str, Any]]:
    response = fleet.prometheus.get("/api/v1/alerts")
    assert response.status_code == 200, response.body
    return [
        alert
        for alert in response.body["data"]["alerts"]
        if alert["labels"].get("namespace") in (fleet.namespace, fleet.short.namespace)
    ]


def test_a_certificate_whose_renewal_is_blocked_fires_certificate_expired(
    kube: client.ApiClient, fleet: Fleet
) -> None:
    # CertificateExpired has no `for:`; the shipped rules are loaded unchanged. Its notAfter
    # (a minute after issuance) comes before CertificateRenewalOverdue's margin runs out
    # (at least a minute past the renewal time), so it is the first to fire.
    def expired() -> dict[str, Any] | None:
        return next(
            (
                alert
                for alert in alerts(fleet)
                if alert["labels"]["alertname"] == "CertificateExpired"
                and alert["state"] == "firing"
            ),
            None,
        )

    short = fleet.short
    alert = wait_until(expired, timeout=short.until_expired_plus(30), what="CertificateExpired")
    firing = {
        (item["labels"]["alertname"], item["labels"]["namespace"], item["labels"]["name"])
        for item in alerts(fleet)
        if item["state"] == "firing"
    }
    status = get_certificate(kube, short.namespace, short.name)["status"]
    active_at = datetime.fromisoformat(alert["activeAt"][:19] + "+00:00")

    assert {
        "labels": alert["labels"],
        "fired before notAfter": active_at < short.not_after,
        # Overdue joins it half a minute later (or at once if Prometheus started late);
        # nothing else in these namespaces fires.
        "firing": firing - {("CertificateRenewalOverdue", short.namespace, short.name)},
        "renewed": (status["serialNumber"], status["revision"])
        != (short.issued["serialNumber"], short.issued["revision"]),
        "why": (condition({"status": status})["reason"], status["failedIssuanceAttempts"] > 0),
    } == {
        "labels": {
            "alertname": "CertificateExpired",
            "severity": "critical",
            "namespace": short.namespace,
            "name": short.name,
            "issuer_name": short.issuer,
            "issuer_kind": "Issuer",
        },
        "fired before notAfter": False,
        "firing": {("CertificateExpired", short.namespace, short.name)},
        "renewed": False,
        "why": ("IssuerNotReady", True),
    }  # fmt: skip
