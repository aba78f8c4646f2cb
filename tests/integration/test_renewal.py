"""Renewal end to end: timing, key rotation, renew requests, restarts, spread and backoff.

Every test runs the real operator against the real control plane. Re-issue moments are
read from the certificates themselves (notBefore + the issuing backdate, whole seconds),
so they do not depend on how often a test polls. Measurements are printed (run with
``-s``) and summarized at the end of the module; the machine is shared, so they are noisy.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import statistics
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from kubernetes import client

from certmint.pki import building, keys
from certmint.pki import ca as pki_ca
from tests.integration.support import (
    BIN,
    GROUP,
    VERSION,
    OperatorProcess,
    ca_issuer,
    certificate,
    condition,
    custom,
    events_for,
    get_certificate,
    key_matches,
    leaf_of,
    openssl_verify,
    read_secret,
    wait_for_condition,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("running_operator")

SECOND = timedelta(seconds=1)
#: How late a renewal may start after its renewalTime and still count as punctual.
PUNCTUAL = 3 * SECOND
#: Unthrottled renewals: seconds from status.renewalTime to the signing (whole seconds,
#: from the certificate) and to the Secret write (milliseconds, from the operator's log).
PUNCTUALITY: list[tuple[float, float | None]] = []
ISSUED_LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO +certmint\.[\w.]+: "
    r"issued serial \w+ \(revision (?P<revision>\d+)\).* "
    r"\[namespace=(?P<namespace>\S+) certificate=(?P<name>\S+) "
)
FAILED_LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) WARNING certmint\.[\w.]+: "
    r"issuance attempt (?P<attempt>\d+) failed: .* "
    r"\[namespace=(?P<namespace>\S+) certificate=(?P<name>\S+) "
)


# Helpers ------------------------------------------------------------------------------
def ca_secret(namespace: str, name: str = "ca-ca") -> client.V1Secret:
    """A user-supplied CA Secret holding a fresh root."""
    root = pki_ca.generate_root_ca(
        f"{namespace} user root",
        timedelta(days=2),
        keys.KeySpec(keys.KeyAlgorithm.ECDSA, 256),
        datetime.now(UTC),
    )
    pem = root.certificate.public_bytes(serialization.Encoding.PEM)
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        type="kubernetes.io/tls",
        data={
            "tls.crt": base64.b64encode(pem).decode(),
            "tls.key": base64.b64encode(keys.private_key_to_pem(root.private_key)).decode(),
        },
    )


def issuer_condition(kube: client.ApiClient, namespace: str, name: str = "ca") -> dict[str, Any]:
    body = custom(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, "issuers", name)
    return condition(body)


def wait_for_issuer(
    kube: client.ApiClient, namespace: str, *, status: str = "True", reason: str | None = None
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        ready = issuer_condition(kube, namespace)
        if ready.get("status") != status or (reason and ready.get("reason") != reason):
            return None
        return ready

    return wait_until(probe, what=f"Issuer {namespace}/ca Ready={status} {reason or ''}")


def statuses(kube: client.ApiClient, namespace: str) -> dict[str, dict[str, Any]]:
    """Every Certificate's status in ``namespace`` (one LIST call), by name."""
    listing = custom(kube).list_namespaced_custom_object(GROUP, VERSION, namespace, "certificates")
    return {item["metadata"]["name"]: item.get("status") or {} for item in listing["items"]}


def revision(number: int) -> Callable[[dict[str, Any]], bool]:
    return lambda body: (body.get("status") or {}).get("revision") == number


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def reissued_at(status: dict[str, Any]) -> datetime:
    """When the operator signed the certificate in ``status`` (whole seconds).

    The issuer backdates notBefore by a fixed amount; only a CA younger than that
    backdate moves notBefore later, which never happens for a renewal.
    """
    return moment(status["notBefore"]) + building.NOT_BEFORE_BACKDATE


def certmint_cli(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the installed ``certmint`` console script."""
    return subprocess.run(
        [str(BIN / "certmint"), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def public_key_der(secret: client.V1Secret) -> bytes:
    return (
        leaf_of(secret)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def event_reasons(kube: client.ApiClient, namespace: str, name: str) -> collections.Counter[str]:
    return collections.Counter(
        event.reason for event in events_for(kube, namespace, name) for _ in range(event.count or 1)
    )


def sentinel(kube: client.ApiClient, namespace: str, name: str = "sentinel") -> None:
    """Creates a Certificate and waits until it is Ready.

    Work is queued in order, so once it is Ready the operator has handled the events
    that came before it (the writes of an earlier issuance among them).
    """
    certificate(kube, namespace, name)
    wait_for_condition(kube, namespace, name)


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def written_at(log: str, namespace: str, name: str, revision: int) -> datetime | None:
    """When the operator's text log says it wrote ``revision`` of a Certificate's Secret."""
    for line in log.splitlines():
        found = ISSUED_LINE.match(line)
        if found and (found["namespace"], found["name"], found["revision"]) == (
            namespace,
            name,
            str(revision),
        ):
            # asctime is the operator's local time, as is a naive datetime here.
            return datetime.strptime(found["at"], "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)
    return None


def record_punctuality(
    operator: OperatorProcess, namespace: str, name: str, *, due: datetime, status: Any
) -> timedelta:
    """Prints and keeps how late a renewal was; returns the lag of the signing."""
    signed = reissued_at(status) - due
    written = written_at(operator.log(), namespace, name, status["revision"])
    write_lag = seconds(written - due) if written else None
    PUNCTUALITY.append((seconds(signed), write_lag))
    print(
        f"{name}: renewalTime {status_time(due)}, signed {seconds(signed):+.0f}s, "
        f"Secret written {'?' if write_lag is None else f'{write_lag:+.3f}s'}"
    )
    return signed


def status_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(autouse=True)
def _remove_objects_afterwards(kube: client.ApiClient, namespace: str) -> Iterator[None]:
    """Deletes this test's Certificates and Issuers.

    Namespaces never finish terminating without a controller-manager; short-lived
    Certificates left behind would keep renewing and skew later measurements.
    """
    yield
    api = custom(kube)
    for plural in ("certificates", "issuers"):
        api.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, plural)


@pytest.fixture(scope="module", autouse=True)
def _report_punctuality() -> Iterator[None]:
    yield
    if not PUNCTUALITY:
        return
    signed = [lag for lag, _ in PUNCTUALITY]
    written = [lag for _, lag in PUNCTUALITY if lag is not None]
    print(
        f"\nrenewal punctuality, {len(signed)} unthrottled renewals, after status.renewalTime:"
        f"\n  signed (whole seconds): median {statistics.median(signed):+.1f}s, "
        f"worst {max(signed):+.1f}s"
    )
    if written:
        print(
            f"  Secret written (ms): median {statistics.median(written):+.3f}s, "
            f"worst {max(written):+.3f}s"
        )


# Timing -------------------------------------------------------------------------------
def test_a_two_minute_certificate_renews_on_time_with_a_new_key_and_stays_valid(
    kube: client.ApiClient,
    namespace: str,
    kubeconfig_path: Path,
    tmp_path: Path,
    running_operator: OperatorProcess,
) -> None:
    ca_issuer(kube, namespace)
    names = ("web-a", "web-b", "web-c")  # three names: three different jitters
    for name in names:
        certificate(kube, namespace, name, duration="2m", renewBefore="1m")
    first = {
        name: wait_for_condition(kube, namespace, name, where=revision(1))["status"]
        for name in names
    }
    first_secrets = {name: read_secret(kube, namespace, f"{name}-tls") for name in names}
    for status in first.values():
        not_after, renewal = moment(status["notAfter"]), moment(status["renewalTime"])
        # renewBefore 1m, moved earlier by at most 10 % of the window.
        assert timedelta(seconds=60) <= not_after - renewal <= timedelta(seconds=66), status
    described = certmint_cli(kubeconfig_path, "status", f"{namespace}/web-a", "--json")
    assert described.returncode == 0, described.stderr
    report = json.loads(described.stdout)
    assert report["ready"] == "True"
    assert report["renewalTime"] == first["web-a"]["renewalTime"]
    assert report["waitingFor"].startswith(f"renewal at {first['web-a']['renewalTime']} (in ")
    assert report["failedIssuanceAttempts"] == 0

    reads = 0

    def every_secret_valid_until_all_renewed() -> dict[str, client.V1Secret] | None:
        nonlocal reads
        renewed = {}
        for name in names:
            now = datetime.now(UTC)
            secret = read_secret(kube, namespace, f"{name}-tls")
            assert secret is not None, f"{name}: the Secret disappeared"
            leaf = leaf_of(secret)
            assert key_matches(secret), f"{name}: tls.key does not match tls.crt at {now}"
            assert leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc, (
                f"{name}: the Secret held a certificate not valid at {now}"
            )
            reads += 1
            if format(leaf.serial_number, "x") != first[name]["serialNumber"]:
                renewed[name] = secret
        return renewed if len(renewed) == len(names) else None

    last_due = max(moment(status["renewalTime"]) for status in first.values())
    renewed = wait_until(
        every_secret_valid_until_all_renewed,
        timeout=seconds(last_due - datetime.now(UTC)) + 20,
        what="all three renewals",
    )

    assert reads > 100, "the Secrets were not watched closely enough to mean anything"
    for name in names:
        body = get_certificate(kube, namespace, name)
        status, old = body["status"], first[name]
        secret, old_secret = renewed[name], first_secrets[name]
        assert old_secret is not None
        assert status["revision"] == 2
        assert status["serialNumber"] == secret.metadata.annotations["certmint.io/serial"]
        assert status["serialNumber"] != old["serialNumber"]
        assert public_key_der(secret) != public_key_der(old_secret), "rotationPolicy Always"
        assert moment(status["renewalTime"]) > moment(old["renewalTime"])
        due = moment(old["renewalTime"])
        lag = record_punctuality(running_operator, namespace, name, due=due, status=status)
        assert timedelta(0) <= lag <= PUNCTUAL, f"{name} renewed {lag} after its renewalTime"
        assert condition(body)["status"] == "True"
        # Events are posted after the status; wait for it, then count exactly.
        wait_until(
            lambda name=name: event_reasons(kube, namespace, name)["Renewed"] >= 1,
            timeout=15,
            what="the Renewed Event",
        )
        assert event_reasons(kube, namespace, name)["Renewed"] == 1
        verified = openssl_verify(secret, tmp_path / name)
        assert verified.returncode == 0, verified.stderr


@pytest.mark.parametrize(
    ("timing", "share"),
    [
        pytest.param(
            {"renewBeforePercentage": 25},
            0.25,
            id="renewBeforePercentage 25 renews when a quarter of the lifetime is left",
        ),
        pytest.param(
            {"renewBeforePercentage": 80},
            0.80,
            id="renewBeforePercentage 80 renews when four fifths of the lifetime are left",
        ),
        pytest.param({}, 1 / 3, id="without either setting renewal starts with a third left"),
    ],
)
def test_the_renewal_time_follows_the_percentage_with_at_most_ten_percent_jitter(
    kube: client.ApiClient, namespace: str, timing: dict[str, Any], share: float
) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace, duration="1h", **timing)

    status = wait_for_condition(kube, namespace, "web")["status"]

    not_before, not_after = moment(status["notBefore"]), moment(status["notAfter"])
    window = (not_after - not_before) * share
    latest = not_after - window
    earliest = latest - window / 10 - SECOND  # jitter, and whole seconds
    assert earliest <= moment(status["renewalTime"]) <= latest, status


def test_rotation_policy_never_keeps_the_key_across_a_renewal(
    kube: client.ApiClient, namespace: str, kubeconfig_path: Path
) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace, duration="1h", privateKey={"rotationPolicy": "Never"})
    first = wait_for_condition(kube, namespace, "web")["status"]
    before = read_secret(kube, namespace, "web-tls")
    assert before is not None

    renewed = certmint_cli(kubeconfig_path, "renew", f"{namespace}/web")
    assert renewed.returncode == 0, renewed.stderr

    status = wait_for_condition(kube, namespace, "web", where=revision(2))["status"]
    after = read_secret(kube, namespace, "web-tls")
    assert after is not None
    assert status["serialNumber"] != first["serialNumber"]
    assert public_key_der(after) == public_key_der(before)
    assert after.data["tls.key"] == before.data["tls.key"]
    assert key_matches(after)


# Renew requests -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "via",
    [
        pytest.param("cli", id="certmint renew asks for exactly one re-issue"),
        pytest.param(
            "annotation", id="the renew-requested-at annotation asks for exactly one re-issue"
        ),
    ],
)
def test_each_renew_request_reissues_exactly_once(
    kube: client.ApiClient,
    namespace: str,
    kubeconfig_path: Path,
    kubectl: Callable[..., subprocess.CompletedProcess[str]],
    via: str,
) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace, duration="1h")
    wait_for_condition(kube, namespace, "web", where=revision(1))

    def request(label: str) -> str:
        if via == "cli":
            result = certmint_cli(kubeconfig_path, "renew", f"{namespace}/web")
            assert result.returncode == 0, result.stderr
            prefix = f"requested a re-issue of {namespace}/web at "
            assert result.stdout.startswith(prefix), result.stdout
            return result.stdout.strip().removeprefix(prefix)
        kubectl(
            "annotate", "--overwrite", "-n", namespace, "certificates.certmint.io/web",
            f"certmint.io/renew-requested-at={label}",
        )  # fmt: skip
        return label

    for number, label in ((2, "first-request"), (3, "second-request")):
        requested = request(label)
        body = wait_for_condition(kube, namespace, "web", where=revision(number))
        sentinel(kube, namespace, f"sentinel-{number}")
        settled = get_certificate(kube, namespace, "web")
        secret = read_secret(kube, namespace, "web-tls")
        assert secret is not None
        assert settled["status"]["revision"] == number
        assert settled["status"]["serialNumber"] == body["status"]["serialNumber"]
        assert secret.metadata.annotations["certmint.io/renew-requested-at"] == requested
        assert secret.metadata.annotations["certmint.io/revision"] == str(number)
        wait_until(
            lambda number=number: event_reasons(kube, namespace, "web")["Renewed"] >= number - 1,
            timeout=15,
            what="the Renewed Event",
        )
        assert event_reasons(kube, namespace, "web")["Renewed"] == number - 1
        if via == "cli":
            # `certmint renew` stamps microseconds, so back-to-back requests are distinct; the
            # test still moves to the next second so it also holds for whole-second stamps.
            next_second = moment(requested).replace(microsecond=0) + SECOND
            wait_until(
                lambda second=next_second: datetime.now(UTC) >= second,
                timeout=5,
                what="a new second",
            )


def test_an_operator_restart_keeps_the_schedule(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    ca_issuer(kube, namespace)
    certificate(kube, namespace, duration="1m", renewBefore="30s")
    first = wait_for_condition(kube, namespace, "web", where=revision(1))["status"]
    due = moment(first["renewalTime"])

    running_operator.stop()
    running_operator.start()
    sentinel(kube, namespace)
    assert datetime.now(UTC) < due - SECOND, "the restart took too long to test anything"
    assert get_certificate(kube, namespace, "web")["status"] == first

    def renewed() -> dict[str, Any] | None:
        status: dict[str, Any] = get_certificate(kube, namespace, "web")["status"]
        return status if status.get("revision") != 1 else None

    status = wait_until(renewed, timeout=seconds(due - datetime.now(UTC)) + 20, what="the renewal")
    lag = record_punctuality(running_operator, namespace, "web", due=due, status=status)
    assert status["revision"] == 2
    assert timedelta(0) <= lag <= PUNCTUAL, f"renewed {lag} after renewalTime"
    assert running_operator.log().count("issued serial") == 2  # the sentinel and the renewal


# Spreading the load -------------------------------------------------------------------
RATE, BURST = 5, 5
RATE_ARGS = ("-A", f"--renewal-rate={RATE}", f"--renewal-burst={BURST}")


def histogram(scheduled: list[float], actual: list[float]) -> str:
    """Per-second counts of scheduled renewal times and of actual re-issues."""
    due = collections.Counter(int(value // 1) for value in scheduled)
    done = collections.Counter(int(value // 1) for value in actual)
    every = [*scheduled, *actual]
    low, high = int(min(every) // 1), int(max(every) // 1)
    rows = [f"  {'second':>6} {'due':>4} {'re-issued':>9}"]
    rows += [
        f"  {second:+5d}s {due[second]:4d} {done[second]:9d} {'#' * done[second]}"
        for second in range(low, high + 1)
    ]
    return "\n".join(rows)


def summary(label: str, values: list[float]) -> str:
    return (
        f"{label:<20}: min {min(values):+.0f}s, median {statistics.median(values):+.1f}s, "
        f"max {max(values):+.0f}s"
    )


def all_at_revision(
    kube: client.ApiClient, namespace: str, names: list[str], number: int
) -> dict[str, dict[str, Any]] | None:
    """Every status once all ``names`` reached ``number``, else None."""
    current = statuses(kube, namespace)
    done = all(current.get(name, {}).get("revision", 0) >= number for name in names)
    return current if done else None


def assert_rate_bound(actual: list[float], count: int) -> None:
    """At most BURST + RATE * t re-issues in any t seconds, and no faster overall.

    Re-issue times have whole seconds, so bins [a, b] span at most b - a + 1 s; one
    second more allows for a worker that starts a released key late.
    """
    bins = sorted(int(value // 1) for value in actual)
    for start, first_bin in enumerate(bins):
        for end in range(start, len(bins)):
            span = bins[end] - first_bin + 2
            assert end - start + 1 <= BURST + RATE * span, (
                f"{end - start + 1} re-issues within {span - 1}s at {RATE}/s, burst {BURST}"
            )
    assert bins[-1] - bins[0] >= (count - BURST) / RATE - 2, bins


def test_two_hundred_certificates_due_together_renew_spread_out_at_the_configured_rate(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    count = 200
    ca_issuer(kube, namespace)
    wait_for_issuer(kube, namespace)
    names = [f"c{index:03d}" for index in range(count)]
    # Created while the operator is down, then issued in one burst: close notAfters.
    running_operator.stop()
    try:
        for name in names:
            certificate(kube, namespace, name, duration="2m", renewBefore="1m")
        running_operator.start(*RATE_ARGS)
        first = wait_until(
            lambda: all_at_revision(kube, namespace, names, 1),
            timeout=60,
            what=f"{count} issuances",
        )
        earliest_expiry = min(moment(first[name]["notAfter"]) for name in names)
        second = wait_until(
            lambda: all_at_revision(kube, namespace, names, 2),
            timeout=seconds(earliest_expiry - datetime.now(UTC)) + 30,
            what=f"{count} renewals",
        )
    finally:
        running_operator.stop()
        running_operator.start()

    def offset(moment_: datetime) -> float:
        return seconds(moment_ - earliest_expiry)

    expiries = [offset(moment(first[name]["notAfter"])) for name in names]
    scheduled = [offset(moment(first[name]["renewalTime"])) for name in names]
    actual = [offset(reissued_at(second[name])) for name in names]
    delays = [a - s for a, s in zip(actual, scheduled, strict=True)]
    print(
        f"\n{count} certificates, duration 2m, renewBefore 1m, --renewal-rate={RATE} "
        f"--renewal-burst={BURST}; seconds relative to the earliest notAfter\n"
        + "\n".join(
            (
                summary("notAfter", expiries),
                summary("status.renewalTime", scheduled),
                summary("actual re-issue", actual),
                summary("delay by the bound", delays),
                histogram(scheduled, actual),
            )
        )
    )

    assert all(second[name]["revision"] == 2 for name in names), "renewed more than once"
    assert min(delays) >= 0, "a certificate was renewed before its renewalTime"
    assert all(a < e for a, e in zip(actual, expiries, strict=True)), "renewed after expiry"
    # The jitter spreads the schedule itself over 6 s (10 % of renewBefore).
    windows = [e - s for e, s in zip(expiries, scheduled, strict=True)]
    assert all(60 <= window <= 66 for window in windows), windows
    assert len({round(window) for window in windows}) >= 5
    assert_rate_bound(actual, count)


def test_renewals_that_fell_due_while_the_operator_was_down_respect_the_rate_bound(
    kube: client.ApiClient, namespace: str, running_operator: OperatorProcess
) -> None:
    count = 60
    ca_issuer(kube, namespace)
    names = [f"c{index:02d}" for index in range(count)]
    for name in names:
        certificate(kube, namespace, name, duration="1m", renewBefore="30s")
    first = wait_until(
        lambda: all_at_revision(kube, namespace, names, 1), timeout=60, what="the issuances"
    )
    last_due = max(moment(status["renewalTime"]) for status in first.values())
    running_operator.stop()
    try:
        wait_until(
            lambda: datetime.now(UTC) > last_due + SECOND,
            timeout=seconds(last_due - datetime.now(UTC)) + 5,
            what="every renewal time to pass",
        )
        running_operator.start(*RATE_ARGS)
        second = wait_until(
            lambda: all_at_revision(kube, namespace, names, 2), timeout=30, what="the renewals"
        )
    finally:
        running_operator.stop()
        running_operator.start()

    started = min(reissued_at(second[name]) for name in names)
    actual = [seconds(reissued_at(second[name]) - started) for name in names]
    print(f"\n{count} overdue renewals after a start:\n{histogram([], actual)}")
    assert all(second[name]["revision"] == 2 for name in names)
    assert_rate_bound(actual, count)


# Failure backoff ----------------------------------------------------------------------
def failed_attempts_in_log(log: str, namespace: str, name: str) -> dict[int, datetime]:
    """When the operator logged each failed issuance attempt of a Certificate (ms)."""
    found = {}
    for line in log.splitlines():
        match = FAILED_LINE.match(line)
        if match and (match["namespace"], match["name"]) == (namespace, name):
            at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)
            found.setdefault(int(match["attempt"]), at)
    return found


def test_without_its_ca_secret_retries_back_off_and_issuance_recovers(
    kube: client.ApiClient,
    namespace: str,
    kubeconfig_path: Path,
    running_operator: OperatorProcess,
) -> None:
    core = client.CoreV1Api(kube)
    core.create_namespaced_secret(namespace, ca_secret(namespace))
    ca_issuer(kube, namespace, generate=False)
    certificate(kube, namespace, duration="1h")
    wait_for_condition(kube, namespace, "web", where=revision(1))

    core.delete_namespaced_secret("ca-ca", namespace)
    wait_for_issuer(kube, namespace, status="False", reason="CASecretMissing")
    assert certmint_cli(kubeconfig_path, "renew", f"{namespace}/web").returncode == 0

    def failed(times: int) -> dict[str, Any] | None:
        status: dict[str, Any] = get_certificate(kube, namespace, "web").get("status") or {}
        return status if (status.get("failedIssuanceAttempts") or 0) >= times else None

    failing = wait_until(lambda: failed(6), timeout=60, what="six failed attempts")
    described = json.loads(
        certmint_cli(kubeconfig_path, "status", f"{namespace}/web", "--json").stdout
    )

    logged = failed_attempts_in_log(running_operator.log(), namespace, "web")
    intervals = [seconds(logged[n + 1] - logged[n]) for n in range(1, 6)]
    print(f"\nseconds between failed attempts 1 to 6: {[round(i, 2) for i in intervals]}")
    assert sorted(logged)[:6] == [1, 2, 3, 4, 5, 6]
    # --retry-base=1 --retry-cap=8: 1, 2, 4, 8, 8 s. The wait counts from lastFailureTime,
    # which has whole seconds, so each can be up to a second shorter.
    for got, expected in zip(intervals, (1, 2, 4, 8, 8), strict=True):
        assert expected - 1.2 <= got <= expected + 1.5, intervals
    assert condition({"status": failing})["reason"] == "IssuerNotReady"
    assert condition({"status": failing}, "Issuing")["status"] == "True"
    assert described["failedIssuanceAttempts"] >= 6
    assert moment(described["lastFailureTime"]) >= logged[6].replace(microsecond=0)
    assert described["waitingFor"].startswith('IssuerNotReady: Issuer "ca" is not ready '), (
        described
    )
    assert "(CASecretMissing)" in described["waitingFor"]

    restored = datetime.now(UTC)
    core.create_namespaced_secret(namespace, ca_secret(namespace))

    body = wait_for_condition(kube, namespace, "web", where=revision(2), timeout=30)
    print(f"recovered {seconds(datetime.now(UTC) - restored):.1f}s after the CA came back")
    assert "failedIssuanceAttempts" not in body["status"]
    assert "lastFailureTime" not in body["status"]
    assert condition(body, "Issuing")["status"] == "False"
    assert event_reasons(kube, namespace, "web")["Failed"] >= 6


# Bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("timing", "message"),
    [
        pytest.param(
            {"duration": "2m", "renewBefore": "2m"},
            "renewBefore (2m) must be shorter than duration (2m)",
            id="the schema refuses a renewBefore as long as the duration",
        ),
        pytest.param(
            {"renewBeforePercentage": 0},
            "should be greater than or equal to 1",
            id="the schema refuses a percentage of zero",
        ),
        pytest.param(
            {"renewBeforePercentage": 100},
            "should be less than or equal to 99",
            id="the schema refuses a percentage of one hundred",
        ),
    ],
)
def test_nonsense_timing_is_refused_by_the_schema(
    kube: client.ApiClient, namespace: str, timing: dict[str, Any], message: str
) -> None:
    with pytest.raises(client.ApiException) as refused:
        certificate(kube, namespace, **timing)

    assert refused.value.status == 422
    assert message in json.loads(refused.value.body)["message"]


@pytest.mark.parametrize(
    ("policy", "timing", "message"),
    [
        pytest.param(
            {"minDuration": "5m"},
            {"duration": "2m"},
            'duration 2m is outside what Issuer "ca" allows: 5m to 168h; '
            "set spec.duration within that range",
            id="a duration below the issuer's minDuration is denied",
        ),
        pytest.param(
            {},
            {"duration": "30s"},
            'duration 30s is outside what Issuer "ca" allows: 1m to 168h; '
            "set spec.duration within that range",
            id="a duration below the one minute floor is denied",
        ),
        pytest.param(
            {},
            {"renewBefore": "30h"},
            "renewBefore 30h is not shorter than the duration 24h (the issuer's default); "
            "shorten spec.renewBefore or set a longer spec.duration",
            id="a renewBefore longer than the issuer's default duration is denied",
        ),
    ],
)
def test_nonsense_timing_is_denied_by_the_policy(
    kube: client.ApiClient,
    namespace: str,
    policy: dict[str, Any],
    timing: dict[str, Any],
    message: str,
) -> None:
    ca_issuer(kube, namespace, policy=policy)
    certificate(kube, namespace, **timing)

    body = wait_for_condition(kube, namespace, "web", status="False", reason="PolicyViolation")

    assert condition(body)["message"] == f"DurationOutOfRange: {message}"
    assert read_secret(kube, namespace, "web-tls") is None
