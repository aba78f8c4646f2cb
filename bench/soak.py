"""``make soak``: N Certificates at the shortest lifetime, renewed for M minutes.

Against a real local control plane, ``certmint run -A`` (a separate process) issues N
Certificates whose ``duration`` is the shortest certmint allows (1 minute: renewal every
40 s or so, one third before expiry, with jitter). Then, for M minutes, every
``--sample-every`` seconds the soak lists the Certificates and their Secrets and notes:

* any Certificate that says Ready while its ``status.notAfter``, or the leaf in its
  Secret, has already passed (a certificate expired while Ready: must never happen);
* the operator's resident memory (``VmRSS``).

At the end it reports the renewals (the revisions gained, and the operator's own
``certmint_issuance_total``), the failed issuances, the expired-while-Ready findings, and
the RSS at the start, the peak and the end (the drift). Not part of ``make test``.

Run: ``make soak SOAK_N=200 SOAK_MINUTES=10`` or
``python -m bench.soak --n 200 --minutes 10 --kubeconfig K`` (from the repository root).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cluster, machine, workload
from cryptography import x509
from harness.control_plane import ControlPlane
from harness.operator_process import OperatorProcess
from harness.polling import wait_until

RESULTS = Path(__file__).with_name("soak-results.json")
ISSUANCE_METRIC = "certmint_issuance_total"
#: The shortest lifetime certmint accepts (policy_types.MIN_DURATION_FLOOR).
SHORTEST_LIFETIME = "1m"


@dataclasses.dataclass
class Observations:
    """What the sampling loop saw."""

    samples: int = 0
    expired_while_ready: list[str] = dataclasses.field(default_factory=list)
    rss_mb: list[float] = dataclasses.field(default_factory=list)


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def leaf_not_after(secret: Mapping[str, Any]) -> datetime | None:
    """The notAfter of the leaf in a Secret's ``tls.crt`` (None when there is none)."""
    data = secret.get("data") or {}
    if "tls.crt" not in data:
        return None
    leaf = x509.load_pem_x509_certificates(base64.b64decode(data["tls.crt"]))[0]
    return leaf.not_valid_after_utc


def expired_while_ready(
    certificates: Sequence[Mapping[str, Any]],
    secrets: Mapping[str, Mapping[str, Any]],
    now: datetime,
) -> list[str]:
    """Certificates that say Ready while their status or their Secret's leaf has expired.

    Returns:
        One line per finding: name, which date passed, and when.
    """
    findings: list[str] = []
    for body in certificates:
        if not cluster.is_ready(body):
            continue
        name = body["metadata"]["name"]
        status_end = parse_time((body.get("status") or {}).get("notAfter"))
        secret = secrets.get(body["spec"]["secretName"])
        leaf_end = leaf_not_after(secret) if secret else None
        for what, end in (("status.notAfter", status_end), ("the Secret's leaf", leaf_end)):
            if end is not None and end <= now:
                findings.append(f"{now.isoformat()} {name}: Ready, {what} {end.isoformat()}")
    return findings


def issuance_counts(operator: OperatorProcess) -> dict[str, float]:
    """``certmint_issuance_total`` summed by result (success, failure, denied)."""
    counts: dict[str, float] = {}
    for sample, value in operator.metric_values(ISSUANCE_METRIC).items():
        result = sample.split('result="', 1)[1].split('"', 1)[0] if 'result="' in sample else ""
        counts[result] = counts.get(result, 0.0) + value
    return counts


def certificate_body(namespace: str, name: str, lifetime: str) -> dict[str, Any]:
    body = workload.certificate_body(namespace, name)
    body["spec"]["duration"] = lifetime
    return body


def create_all(api: cluster.Api, namespace: str, names: Sequence[str], lifetime: str) -> None:
    for name in names:
        api.custom.create_namespaced_custom_object(
            cluster.GROUP, cluster.VERSION, namespace, cluster.PLURAL,
            certificate_body(namespace, name, lifetime), _preload_content=False,
        )  # fmt: skip


def secrets_by_name(api: cluster.Api, namespace: str) -> dict[str, dict[str, Any]]:
    response = api.core.list_namespaced_secret(namespace, _preload_content=False)
    return {item["metadata"]["name"]: item for item in json.loads(response.data)["items"]}


def observe(
    api: cluster.Api, operator: OperatorProcess, namespace: str, minutes: float, every: float
) -> Observations:
    """Samples until ``minutes`` have passed; stops early if the operator exits."""
    seen = Observations()
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        operator.check_running()
        certificates = api.certificates(namespace)
        secrets = secrets_by_name(api, namespace)
        seen.expired_while_ready += expired_while_ready(certificates, secrets, datetime.now(UTC))
        seen.rss_mb.append(machine.process_memory_mb(operator.pid, "VmRSS"))
        seen.samples += 1
        time.sleep(every)  # the sampling interval of a measurement, not a synchronization
    return seen


def summary(
    args: argparse.Namespace,
    before: Mapping[str, float],
    after: Mapping[str, float],
    revisions: Sequence[int],
    seen: Observations,
) -> dict[str, Any]:
    rss = seen.rss_mb
    return {
        "certificates": args.n,
        "lifetime": args.lifetime,
        "minutes": args.minutes,
        "samples": seen.samples,
        "renewals (revisions gained)": sum(revisions) - len(revisions),
        "issuances (operator metric)": after.get("success", 0) - before.get("success", 0),
        "failed issuances": after.get("failure", 0) - before.get("failure", 0),
        "expired while Ready": len(seen.expired_while_ready),
        "expired while Ready, first findings": seen.expired_while_ready[:10],
        "rss_mb": {
            "start": round(rss[0], 1),
            "peak": round(max(rss), 1),
            "end": round(rss[-1], 1),
            "drift": round(rss[-1] - rss[0], 1),
        },
    }


def soak(args: argparse.Namespace) -> dict[str, Any]:
    kubeconfig = Path(args.kubeconfig)
    api = cluster.Api(kubeconfig, pool_size=8)
    cluster.prepare_cluster(api, ControlPlane(kubeconfig.parent, kubeconfig))
    log_dir = Path(tempfile.mkdtemp(prefix="certmint-soak-"))
    operator = OperatorProcess(kubeconfig, log_dir, options=("--workers=16",), stop_timeout=60.0)
    namespace = f"soak-{uuid.uuid4().hex[:6]}"
    api.create_namespace(namespace)
    names = [f"soak-{index:05d}" for index in range(args.n)]
    print(f"soak: N={args.n} lifetime={args.lifetime} M={args.minutes}; logs in {log_dir}",
          file=sys.stderr)  # fmt: skip
    try:
        operator.start(timeout=60)
        wait_until(api.issuer_ready, timeout=60, what="the ClusterIssuer Ready")
        create_all(api, namespace, names, args.lifetime)
        wait_until(
            lambda: sum(map(cluster.is_ready, api.certificates(namespace))) == args.n,
            timeout=120, what="every Certificate Ready", every=1.0,
        )  # fmt: skip
        before = issuance_counts(operator)
        seen = observe(api, operator, namespace, args.minutes, args.sample_every)
        after = issuance_counts(operator)
        revisions = [
            int((body.get("status") or {}).get("revision") or 0)
            for body in api.certificates(namespace)
        ]
    finally:
        operator.stop()
        api.empty_namespace(namespace)
        api.delete_namespace(namespace)
    return summary(args, before, after, revisions, seen)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=200, help="Certificates")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to soak")
    parser.add_argument("--lifetime", default=SHORTEST_LIFETIME, help="Certificate duration")
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds")
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = soak(args)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 1 if results["expired while Ready"] or results["failed issuances"] else 0


if __name__ == "__main__":
    sys.exit(main())
