"""Minimal valid Certificate and issuer bodies for the certmint.api parser tests."""

from __future__ import annotations

from typing import Any

#: Removes a field from a body when given as its value.
ABSENT = object()

#: The messages of refusals that several resources share.
NOT_A_DURATION = (
    'is not a duration; write hours, minutes and seconds such as "24h", "1h30m" or "90s"'
)
NOT_A_NAME = 'is not a Kubernetes object name; use lowercase letters, digits, "-" and "."'
CLAIMS_OID = "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1"


def certificate_body(**spec_fields: Any) -> dict[str, Any]:
    """A minimal valid Certificate with some spec fields replaced (ABSENT removes one)."""
    spec: dict[str, Any] = {
        "secretName": "api-tls",
        "issuerRef": {"name": "workloads", "kind": "ClusterIssuer"},
    }
    spec.update(spec_fields)
    return {"spec": {key: value for key, value in spec.items() if value is not ABSENT}}


def issuer_body(kind: str = "ClusterIssuer", **spec_fields: Any) -> dict[str, Any]:
    """A minimal valid issuer with some spec fields replaced (ABSENT removes one)."""
    spec: dict[str, Any] = {"ca": {"secretName": "workloads-ca"}}
    spec.update(spec_fields)
    metadata = {"name": "workloads", "namespace": "payments"}
    return {
        "kind": kind,
        "metadata": metadata,
        "spec": {key: value for key, value in spec.items() if value is not ABSENT},
    }
