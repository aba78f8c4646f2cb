"""Where the operator's bytes go per Certificate, in a synthetic store (not a test).

Fills a `certmint.core.state.Store` as the watches fill it after issuance: N Certificate
records parsed by `certmint.runtime.handlers.certificate_record` (20 namespaces, 2
ClusterIssuers, a Ready status as certmint writes it) and N Secret summaries read by
`certmint.core.secret_format.read_secret` from real issued Secret bodies
(`secret_format.secret_body` over a few ECDSA P-256 leaves issued by `certmint.pki`, reused
under varied names). Every body goes through JSON first, as a watch event does. Each
record is also registered with the metrics index, as the collector does.

Reports two numbers per Certificate:

- ``traced``: Python allocations held (``tracemalloc``), with the top allocation sites by
  file:line; it cannot see memory the Rust side of ``cryptography`` allocates (parsed
  certificates);
- ``rss``: the growth of the process's resident set over the fill (a separate fill without
  tracing), which does.

Run: ``.venv/bin/python bench/memory_bench.py [--n 10000] [--top 15]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import floor
from cryptography.hazmat.primitives import serialization

from certmint.api import certificate_types
from certmint.core import fleet, readiness, secret_format, state
from certmint.pki import ca, issuing, keys, spiffe
from certmint.runtime import handlers

NOW = datetime.now(UTC)
LEAVES = 8
NAMESPACES = 20


def _spec(index: int) -> dict[str, Any]:
    namespace = f"team-{index % NAMESPACES:02d}"
    return {
        "secretName": f"workload-{index:06d}-tls",
        "issuerRef": {"name": f"ca-{index % 2}", "kind": "ClusterIssuer"},
        "serviceAccountName": "app",
        "dnsNames": [f"workload-{index:06d}.{namespace}.svc"],
    }


def _certificate_body(index: int) -> dict[str, Any]:
    not_after = NOW + timedelta(hours=24)
    return {
        "metadata": {
            "name": f"workload-{index:06d}",
            "namespace": f"team-{index % NAMESPACES:02d}",
            "uid": f"0b6c8f1e-5d2a-4c7e-9a3b-{index:012d}",
            "generation": 1,
            "resourceVersion": str(1_000_000 + index),
        },
        "spec": _spec(index),
        "status": {
            # As certmint writes it after an issuance (certmint.core.outcome).
            "conditions": [
                floor.condition("Ready", "True", "Ready", readiness.UP_TO_DATE, NOW),
                floor.condition("Issued", "False", "Issued", "no issuance in progress", NOW),
            ],
            "identity": f"spiffe://cluster.local/ns/team-{index % NAMESPACES:02d}/sa/app",
            "serialNumber": f"{index * 7919 + 10**38:040x}",
            "notBefore": floor.stamp(NOW),
            "notAfter": floor.stamp(not_after),
            "renewalTime": floor.stamp(not_after - timedelta(hours=8)),
            "revision": 1,
        },
    }


def issued_secret_bodies() -> list[dict[str, Any]]:
    """A few real issued Secret bodies, as the API returns them (base64 ``data``)."""
    signer = ca.generate_root_ca("bench", timedelta(days=2), keys.KeySpec(), NOW)
    bodies = []
    for index in range(LEAVES):
        body = _certificate_body(index)
        spec = certificate_types.CertificateSpec.from_body(body)
        namespace = body["metadata"]["namespace"]
        key = keys.generate_private_key(keys.KeySpec())
        identity = spiffe.workload_id("cluster.local", namespace, "app")
        request = issuing.LeafRequest(
            public_key=key.public_key(),
            duration=timedelta(hours=24),
            spiffe_id=identity,
            dns_names=spec.dns_names,
        )
        content = secret_format.SecretContent(
            namespace=namespace,
            certificate_name=body["metadata"]["name"],
            certificate_uid=body["metadata"]["uid"],
            spec=spec,
            spec_hash=secret_format.spec_hash(body["spec"]),
            issued=issuing.issue(request, signer, NOW),
            private_key=key,
            bundle_pem=signer.certificate.public_bytes(serialization.Encoding.PEM),
            identity=str(identity),
            revision=1,
            renew_request="",
        )
        bodies.append(secret_format.secret_body(content))
    return bodies


def fill(n: int, secrets: list[dict[str, Any]]) -> tuple[state.Store, fleet.FleetIndex]:
    """A store holding n Certificates and their Secrets, and the metrics index over it."""
    store = state.Store()
    index_ = fleet.FleetIndex()
    store.subscribe(index_.changed)
    for index in range(n):
        # Through JSON, as the watch decodes each event: no string is shared by accident.
        record = handlers.certificate_record(_decoded(_certificate_body(index)))
        store.put_certificate(record)
        template = secrets[index % len(secrets)]
        metadata = {
            **template["metadata"],
            "name": f"workload-{index:06d}-tls",
            "namespace": record.namespace,
            "uid": f"7d1e2f3a-8b9c-4d0e-a1f2-{index:012d}",
            "resourceVersion": str(2_000_000 + index),
            "labels": {
                **template["metadata"]["labels"],
                "certmint.io/certificate-name": record.name,
            },
        }
        summary = secret_format.read_secret(_decoded({**template, "metadata": metadata}))
        store.secrets[(record.namespace, metadata["name"])] = summary
    index_.refresh()
    return store, index_


def _decoded(body: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(json.dumps(body))
    return decoded


def _rss_bytes() -> int:
    resident_pages = pathlib.Path("/proc/self/statm").read_text(encoding="ascii").split()[1]
    return int(resident_pages) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    secrets = issued_secret_bodies()

    gc.collect()
    before = _rss_bytes()
    started = time.monotonic()
    held = fill(args.n, secrets)
    gc.collect()
    rss = _rss_bytes() - before
    seconds = time.monotonic() - started
    del held
    gc.collect()

    tracemalloc.start()
    baseline = tracemalloc.take_snapshot()
    held = fill(args.n, secrets)
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = snapshot.compare_to(baseline, "lineno")
    traced = sum(stat.size_diff for stat in stats)

    print(f"N = {args.n} Certificates (+ Secrets), filled in {seconds:.1f} s")
    print(f"traced (tracemalloc): {traced / args.n:8.0f} B per Certificate")
    print(f"rss growth:           {rss / args.n:8.0f} B per Certificate")
    print(f"top {args.top} allocation sites (B per Certificate, file:line):")
    for stat in stats[: args.top]:
        frame = stat.traceback[0]
        print(f"{stat.size_diff / args.n:8.0f}  {frame.filename}:{frame.lineno}")
    del held


if __name__ == "__main__":
    main()
