"""The writes a CA rotation plan asks for (`certmint.core.rotation_plan`), and the Events
they announce once performed. Values only: the executor performs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from certmint.api import issuer_types
from certmint.core import ca_secret, status
from certmint.pki import ca as pki_ca
from certmint.pki import keys

Event = tuple[str, str, str]  # type, reason, message


@dataclasses.dataclass(frozen=True)
class CreateCA:
    """Generate a root CA into a Secret that does not exist (never overwrites one)."""

    secret_name: str
    generate: issuer_types.GenerateSpec
    annotations: Mapping[str, str]

    def announce(self, namespace: str, ca: pki_ca.CertificateAuthority) -> Event:
        return (
            "Normal",
            "CAGenerated",
            f'generated root CA "{self.generate.common_name}" '
            f"({ca.fingerprint_sha256[:16]}) into Secret {namespace}/{self.secret_name}",
        )


@dataclasses.dataclass(frozen=True)
class PrepareNext(CreateCA):
    """Generate the next CA into ``<secretName>-next``: its root joins the bundle."""

    activate_after: datetime = dataclasses.field(kw_only=True)
    why: str = dataclasses.field(kw_only=True)

    def announce(self, namespace: str, ca: pki_ca.CertificateAuthority) -> Event:
        return (
            "Normal",
            "CARotationPrepared",
            f"published the next root ({ca.fingerprint_sha256[:16]}) in the trust bundle; "
            f"signing switches to it after {status.timestamp(self.activate_after)} ({self.why})",
        )


@dataclasses.dataclass(frozen=True)
class ActivateNext:
    """Sign with the next CA: copy the current one into ``previous_name`` (its key stays
    until its root leaves the bundle), promote ``next`` into ``main`` with
    ``annotations``, delete ``next``. Each write is idempotent."""

    main: ca_secret.CASecret
    next: ca_secret.CASecret
    previous: ca_secret.CASecret | None
    previous_name: str
    annotations: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class DiscardNext:
    """Delete a generated ``<secretName>-next`` that is left over or unusable."""

    secret: ca_secret.CASecret
    why: str


@dataclasses.dataclass(frozen=True)
class RetirePrevious:
    """Delete ``<secretName>-previous``: the last root whose key it kept left the bundle."""

    secret: ca_secret.CASecret


Action = CreateCA | PrepareNext | ActivateNext | DiscardNext | RetirePrevious


def new_ca(generate: issuer_types.GenerateSpec, now: datetime) -> pki_ca.CertificateAuthority:
    """A fresh root CA as ``generate`` describes it (a new key each call)."""
    return pki_ca.generate_root_ca(
        generate.common_name,
        generate.duration,
        keys.KeySpec(
            keys.KeyAlgorithm(generate.private_key.algorithm), generate.private_key.size
        ).normalized(),
        now,
    )
