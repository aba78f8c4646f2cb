"""From a Certificate spec and its issuer to a `LeafRequest` (pure).

The SPIFFE identity always comes from the Certificate's own namespace and
ServiceAccount, never from user-supplied URIs (policy refuses those).
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from cryptography import x509

from certmint.api import certificate_types, issuer_types
from certmint.pki import claims, extensions, issuing, keys, spiffe


def key_spec(spec: certificate_types.PrivateKeySpec) -> keys.KeySpec:
    """The PKI core's key spec for a Certificate's ``privateKey``."""
    return keys.KeySpec(keys.KeyAlgorithm(spec.algorithm), spec.size).normalized()


def identity(
    spec: certificate_types.CertificateSpec, issuer: issuer_types.IssuerSpec, namespace: str
) -> spiffe.SpiffeId | None:
    """The workload identity: ``spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>``."""
    if not spec.service_account_name:
        return None
    return spiffe.workload_id(issuer.trust_domain, namespace, spec.service_account_name)


def leaf_request(
    spec: certificate_types.CertificateSpec,
    issuer: issuer_types.IssuerSpec,
    namespace: str,
    public_key: keys.PublicKey,
    duration: timedelta,
    *,
    claims_oid: x509.ObjectIdentifier = claims.CLAIMS_OID,
) -> issuing.LeafRequest:
    """Builds what the certificate will say; its claims go under ``claims_oid``.

    Raises:
        PKIError: A value the PKI core refuses (an extension value, an invalid name).
    """
    workload = identity(spec, issuer, namespace)
    common_name = spec.common_name
    if not common_name and issuer.self_signed:
        # A self-signed certificate names itself as issuer, so its subject cannot be empty.
        common_name = str(workload) if workload else spec.secret_name
    return issuing.LeafRequest(
        public_key=public_key,
        duration=duration,
        spiffe_id=workload,
        common_name=common_name,
        subject=issuing.Subject(
            organizations=spec.subject.organizations,
            organizational_units=spec.subject.organizational_units,
            countries=spec.subject.countries,
            provinces=spec.subject.provinces,
            localities=spec.subject.localities,
        ),
        dns_names=spec.dns_names,
        ip_addresses=tuple(ipaddress.ip_address(ip) for ip in spec.ip_addresses),
        uris=spec.uris,
        email_addresses=spec.email_addresses,
        claims=spec.claims,
        claims_oid=claims_oid,
        extensions=tuple(
            extensions.RawExtension(
                oid=ext.oid,
                critical=ext.critical,
                value_der=extensions.encode_value(ext.kind, ext.value, f"spec.extensions[{i}]"),
            )
            for i, ext in enumerate(spec.extensions)
        ),
        usages=spec.usages,
        is_ca=spec.is_ca,
    )
