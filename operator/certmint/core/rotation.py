"""CA rotation and the trust bundle: pure timing rules and status (de)serialization.

The trust bundle is the ordered set of roots workloads must trust now: previous roots
(whose leaves may still be alive), the current root, and the next root (published
before anything is signed with it). A rotation has two phases:

- **prepare**: make the next CA and publish its root in the bundle;
- **activate**: sign with it, once every workload has had the time to pick up the new
  bundle, i.e. never sooner than the longest leaf lifetime after prepare.

The previous root stays until the last leaf it may have signed has expired.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from cryptography import x509

from certmint.core import status
from certmint.pki import decode, errors

Role = Literal["previous", "current", "next"]
#: Roles in the order roots appear in ``ca.crt`` and in the issuer status.
ROLE_ORDER: tuple[Role, ...] = ("previous", "current", "next")


@dataclasses.dataclass(frozen=True)
class Root:
    """One root of a trust bundle.

    Attributes:
        role: previous, current or next.
        certificate: The root certificate.
        retain_until: For a previous root, when it may leave the bundle.
    """

    role: Role
    certificate: x509.Certificate
    retain_until: datetime | None = None


def _remaining(certificate: x509.Certificate, percentage: int) -> datetime:
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    return certificate.not_valid_after_utc - lifetime * percentage / 100


def prepare_time(current: x509.Certificate, prepare_before_percentage: int) -> datetime:
    """When the next CA is made: when ``prepare_before_percentage`` of the lifetime remains."""
    return _remaining(current, prepare_before_percentage)


def activate_time(
    current: x509.Certificate,
    prepared_at: datetime,
    longest_leaf: timedelta,
    activate_before_percentage: int,
    *,
    requested: bool,
) -> datetime:
    """When signing switches to the next CA.

    Never sooner than ``longest_leaf`` after prepare, so every workload has received
    the new root before a peer presents a leaf signed by it. A scheduled rotation also
    waits until ``activate_before_percentage`` of the current CA's lifetime remains; a
    requested one (``certmint rotate-ca``) activates as soon as that is safe.
    """
    earliest = prepared_at + longest_leaf
    if requested:
        return earliest
    return max(earliest, _remaining(current, activate_before_percentage))


def retain_until(
    root: x509.Certificate, replaced_at: datetime, longest_leaf: timedelta
) -> datetime:
    """When a replaced root may leave the bundle: its last leaf has expired by then.

    Every leaf it signed was signed before ``replaced_at`` and lives at most
    ``longest_leaf``; a leaf never outlives its root either.
    """
    return min(replaced_at + longest_leaf, root.not_valid_after_utc)


def ordered(roots: Iterable[Root]) -> list[Root]:
    """Roots in bundle order, without duplicates (the first entry of a root wins)."""
    seen: set[str] = set()
    result = []
    for root in sorted(roots, key=lambda r: ROLE_ORDER.index(r.role)):
        fingerprint = decode.fingerprint_sha256(root.certificate)
        if fingerprint not in seen:
            seen.add(fingerprint)
            result.append(root)
    return result


def live_previous(roots: Iterable[Root], now: datetime) -> list[Root]:
    """Previous roots still needed at ``now``."""
    return [
        root
        for root in roots
        if root.role == "previous"
        and now < root.certificate.not_valid_after_utc
        and (root.retain_until is None or now < root.retain_until)
    ]


def to_status(roots: Sequence[Root]) -> list[dict[str, Any]]:
    """The issuer's ``status.trustBundle``."""
    entries = []
    for root in roots:
        entry: dict[str, Any] = {
            "role": root.role,
            "subject": root.certificate.subject.rfc4514_string(),
            "notAfter": status.timestamp(root.certificate.not_valid_after_utc),
            "fingerprintSHA256": decode.fingerprint_sha256(root.certificate),
            "certificate": decode.certificates_to_pem((root.certificate,)).decode(),
        }
        if root.retain_until is not None:
            entry["retainUntil"] = status.timestamp(root.retain_until)
        entries.append(entry)
    return entries


def from_status(entries: Iterable[Mapping[str, Any]]) -> list[Root]:
    """Reads ``status.trustBundle`` back; entries that cannot be read are skipped."""
    roots = []
    for entry in entries:
        role = entry.get("role")
        pem = entry.get("certificate")
        if role not in ROLE_ORDER or not isinstance(pem, str):
            continue
        try:
            certificates = decode.load_pem_certificates(pem.encode())
        except (errors.PKIError, ValueError):
            continue
        if certificates:
            roots.append(
                Root(role, certificates[0], status.parse_timestamp(entry.get("retainUntil")))
            )
    return roots


def bundle_pem(roots: Sequence[Root]) -> bytes:
    """``ca.crt``: every root of the bundle, PEM, in bundle order."""
    return decode.certificates_to_pem(root.certificate for root in roots)
