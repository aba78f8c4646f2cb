"""Trust distribution: the issuer's trust bundle as a ConfigMap in chosen namespaces (pure).

The ConfigMap (``spec.trustDistribution.configMapName``, default ``certmint-trust``)
holds ``ca.crt`` (PEM) and ``bundle.spiffe``, a SPIFFE trust bundle: a JWK set whose
keys have ``use: x509-svid`` and the root in ``x5c``, plus ``spiffe_sequence`` (grows
whenever the content changes) and ``spiffe_refresh_hint`` (seconds).

certmint writes only what it created: a ConfigMap or ClusterTrustBundle is the issuer's
when it carries both ownership labels naming that issuer (`owns`). One of the same name
without them is a conflict, reported on the issuer's ``TrustDistributed`` condition
(`condition`) and never written or deleted.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jwcrypto import jwk

from certmint.api import issuer_types, resources

KEY_PEM: Final = "ca.crt"
KEY_SPIFFE: Final = "bundle.spiffe"


def issuer_labels(kind: str, name: str) -> dict[str, str]:
    """Labels that mark a ConfigMap (or ClusterTrustBundle) as this issuer's."""
    return {resources.LABEL_TRUST_ISSUER_KIND: kind, resources.LABEL_TRUST_ISSUER_NAME: name}


def owns(body: Mapping[str, Any] | None, kind: str, name: str) -> bool:
    """Whether an existing object carries the ownership labels of this very issuer.

    Args:
        body: The ConfigMap or ClusterTrustBundle as read (None when absent).
        kind: ``Issuer`` or ``ClusterIssuer``.
        name: The issuer's name.

    Returns:
        True only when both labels are present with these values.
    """
    labels = ((body or {}).get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in issuer_labels(kind, name).items())


def conflict_message(what: str, kind: str, name: str, remedy: str) -> str:
    """The message for one object of the wanted name that certmint did not create.

    Args:
        what: E.g. ``ConfigMap "team-a/app-config"``.
        kind: The issuer's kind.
        name: The issuer's name.
        remedy: What the user can do instead, a sentence.

    Returns:
        What is wrong, then the remedy.
    """
    return (
        f'{what} exists and was not created by certmint for {kind} "{name}"; certmint '
        f"never overwrites it. {remedy}"
    )


#: The most conflicts one condition message lists; the rest are counted.
MAX_LISTED_CONFLICTS: Final = 5


def condition(conflicts: Sequence[str], config_map_name: str) -> tuple[str, str, str]:
    """The ``TrustDistributed`` condition: status, reason and message.

    Args:
        conflicts: Conflict messages (`conflict_message`), sorted.
        config_map_name: The ConfigMap name published.

    Returns:
        ``("True", "Distributed", ...)`` without conflicts, else
        ``("False", "TrustDistributionConflict", <the first conflicts>)``.
    """
    if not conflicts:
        return (
            "True",
            "Distributed",
            f'the trust bundle is published as ConfigMap "{config_map_name}" in every '
            "selected namespace",
        )
    listed = list(conflicts[:MAX_LISTED_CONFLICTS])
    if len(conflicts) > MAX_LISTED_CONFLICTS:
        listed.append(f"and {len(conflicts) - MAX_LISTED_CONFLICTS} more")
    return ("False", "TrustDistributionConflict", " ".join(listed))


def label_selector(kind: str, name: str) -> str:
    return ",".join(f"{key}={value}" for key, value in issuer_labels(kind, name).items())


def target_namespaces(
    spec: issuer_types.TrustDistributionSpec,
    issuer_namespace: str,
    namespaces: Mapping[str, Mapping[str, str]],
) -> set[str]:
    """The namespaces that must hold the ConfigMap.

    Args:
        spec: The issuer's ``trustDistribution``.
        issuer_namespace: A namespaced Issuer's namespace ("" for a ClusterIssuer).
        namespaces: Every known namespace with its labels.

    Returns:
        Only its own namespace for an Issuer; for a ClusterIssuer, every namespace
        selected by name glob or label selector.
    """
    if issuer_namespace:
        return {issuer_namespace}
    return {name for name, labels in namespaces.items() if spec.selects(name, labels)}


def spiffe_bundle(roots: Sequence[x509.Certificate], sequence: int, refresh_hint: timedelta) -> str:
    """A SPIFFE trust bundle (JWK set) for X509-SVID verification."""
    keys = []
    for root in roots:
        key: dict[str, Any] = jwk.JWK.from_pyca(root.public_key()).export(
            private_key=False, as_dict=True
        )
        key.pop("kid", None)
        key["use"] = "x509-svid"
        key["x5c"] = [base64.b64encode(root.public_bytes(serialization.Encoding.DER)).decode()]
        keys.append(key)
    document = {
        "keys": keys,
        "spiffe_sequence": sequence,
        "spiffe_refresh_hint": int(refresh_hint.total_seconds()),
    }
    return json.dumps(document, indent=2, sort_keys=True)


def config_map_body(
    *,
    namespace: str,
    name: str,
    kind: str,
    issuer_name: str,
    roots: Sequence[x509.Certificate],
    bundle_pem: bytes,
    sequence: int,
    refresh_hint: timedelta,
) -> dict[str, Any]:
    """The trust ConfigMap for one namespace."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": issuer_labels(kind, issuer_name),
            "annotations": {resources.ANNOTATION_SPIFFE_SEQUENCE: str(sequence)},
        },
        "data": {
            KEY_PEM: bundle_pem.decode(),
            KEY_SPIFFE: spiffe_bundle(roots, sequence, refresh_hint),
        },
    }


def cluster_trust_bundle_name(kind: str, name: str) -> str:
    """A ClusterTrustBundle name without a signer (no ``:`` allowed)."""
    return f"certmint.{kind.lower()}.{name}"


def cluster_trust_bundle_body(kind: str, name: str, bundle_pem: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "certificates.k8s.io/v1beta1",
        "kind": "ClusterTrustBundle",
        "metadata": {
            "name": cluster_trust_bundle_name(kind, name),
            "labels": issuer_labels(kind, name),
        },
        "spec": {"trustBundle": bundle_pem.decode()},
    }
