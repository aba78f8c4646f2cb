"""Helpers for the PKI core tests: one clock, cached keys and CAs per algorithm.

Keys are generated once per session (RSA generation dominates otherwise). ``NOW`` is the
real time at import, so certificates issued "now" also satisfy peers that read the real
clock (openssl, the ssl module).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from typing import Any

from cryptography import x509

from certmint.pki import building, ca, issuing, keys, spiffe

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
TRUST_DOMAIN = "cluster.local"
IDENTITY = spiffe.workload_id(TRUST_DOMAIN, "payments", "api")

ALGORITHMS: dict[str, keys.KeySpec] = {
    "ECDSA P-256": keys.KeySpec(keys.KeyAlgorithm.ECDSA, 256),
    "ECDSA P-384": keys.KeySpec(keys.KeyAlgorithm.ECDSA, 384),
    "RSA 2048": keys.KeySpec(keys.KeyAlgorithm.RSA, 2048),
    "Ed25519": keys.KeySpec(keys.KeyAlgorithm.ED25519),
}


@dataclasses.dataclass(frozen=True)
class Pki:
    """Cached keys and CAs; the same arguments always give the same objects."""

    now: datetime.datetime

    def key(self, algorithm: str, label: str = "leaf") -> keys.PrivateKey:
        """A key per (algorithm, label), generated once."""
        return self._key(algorithm, label)

    def root(self, algorithm: str, label: str = "root") -> ca.CertificateAuthority:
        """A 30-day root per (algorithm, label), named "<label> <algorithm>"."""
        return self._root(algorithm, label)

    # Positional-only caches, so that defaulted and explicit labels share one entry.
    @functools.cache  # noqa: B019  # one session-wide instance; caching is the point
    def _key(self, algorithm: str, label: str, /) -> keys.PrivateKey:
        return keys.generate_private_key(ALGORITHMS[algorithm])

    @functools.cache  # noqa: B019
    def _root(self, algorithm: str, label: str, /) -> ca.CertificateAuthority:
        return ca.generate_root_ca(
            f"{label} {algorithm}", datetime.timedelta(days=30), ALGORITHMS[algorithm], self.now
        )

    @functools.cache  # noqa: B019
    def intermediate(self, algorithm: str) -> ca.CertificateAuthority:
        return ca.issue_intermediate_ca(
            self.root(algorithm),
            f"intermediate {algorithm}",
            datetime.timedelta(days=10),
            ALGORITHMS[algorithm],
            self.now,
        )

    def request(self, algorithm: str = "ECDSA P-256", /, **changes: Any) -> issuing.LeafRequest:
        """A valid workload request; keyword arguments replace fields."""
        base = issuing.LeafRequest(
            public_key=self.key(algorithm).public_key(),
            duration=datetime.timedelta(hours=1),
            spiffe_id=IDENTITY,
        )
        return dataclasses.replace(base, **changes)


def craft(
    signer: ca.CertificateAuthority | None,
    key: keys.PrivateKey,
    extensions: list[building.Extension],
    *,
    common_name: str = "",
    lifetime: tuple[datetime.datetime, datetime.datetime] = (
        NOW - datetime.timedelta(minutes=1),
        NOW + datetime.timedelta(hours=1),
    ),
) -> x509.Certificate:
    """Sign a certificate outside the issuing rules, to test what verifiers refuse.

    Args:
        signer: The issuing CA, or None for self-signed by ``key``.
        key: The certified key (and the signer when self-signed).
        extensions: Exactly the extensions to include, plus SKI/AKI.
        common_name: Subject CN; empty for an empty subject.
        lifetime: notBefore and notAfter.
    """
    subject = x509.Name(
        [x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)] if common_name else []
    )
    ski, aki = building.key_identifiers(key.public_key(), signer.certificate if signer else None)
    return building.sign(
        building.Blueprint(
            subject=subject,
            issuer=signer.certificate.subject if signer else subject,
            public_key=key.public_key(),
            not_before=lifetime[0],
            not_after=lifetime[1],
            extensions=[*extensions, ski, aki],
        ),
        signer.private_key if signer else key,
    )
