"""May certmint write this Secret? Ownership and explicit adoption of cert-manager Secrets.

Pure decisions over plain values. certmint writes a Secret it created (its
``certmint.io/certificate-name`` label names the Certificate), or a Secret cert-manager
wrote for the cert-manager Certificate this Certificate replaces, when the Certificate asks
for it with ``spec.secretAdoption`` (docs/migrating-from-cert-manager.md). Nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

#: The annotation cert-manager puts on every Secret it issues into.
CERT_MANAGER_CERTIFICATE_NAME: Final = "cert-manager.io/certificate-name"
ADOPTED_FROM_CERT_MANAGER: Final = "cert-manager"
# Metadata that belongs to an issuer: certmint's own is rewritten on each issuance, and
# cert-manager's describes a certificate that is no longer there once certmint has issued.
_ISSUER_PREFIXES: Final = ("certmint.io/", "cert-manager.io/", "controller.cert-manager.io/")


@dataclasses.dataclass(frozen=True)
class Ownership:
    """The answer: may certmint write the Secret, and if not, why (a condition message)."""

    writable: bool
    adopting: bool = False
    reason: str = ""


def decide(
    certificate_name: str,
    adopt_from: str | None,
    secret_owner: str | None,
    secret_cert_manager_name: str | None,
) -> Ownership:
    """Decides whether certmint may write a Secret that already exists.

    Args:
        certificate_name: the certmint Certificate that wants to write it.
        adopt_from: its ``spec.secretAdoption.certManagerCertificateName``, None if absent.
        secret_owner: the Secret's ``certmint.io/certificate-name`` label, None if absent.
        secret_cert_manager_name: the Secret's ``cert-manager.io/certificate-name``
            annotation, None if absent.

    Returns:
        Writable when certmint's label names this Certificate; writable and adopting when
        the Secret carries no certmint label and the Certificate explicitly adopts the
        cert-manager Certificate of its own name that the Secret's annotation names.
        Otherwise not writable, with the reason. Does not look at the Secret's content:
        an adopted Secret's certificate is replaced by the first issuance whatever it is.
    """
    if secret_owner == certificate_name:
        return Ownership(writable=True)
    if secret_owner is not None:
        return Ownership(False, reason=f'belongs to Certificate "{secret_owner}"')
    if adopt_from is None:
        return Ownership(False, reason="belongs to no certmint Certificate")
    if adopt_from != certificate_name:
        return Ownership(False, reason="spec.secretAdoption names another Certificate")
    if secret_cert_manager_name != adopt_from:
        found = f'"{secret_cert_manager_name}"' if secret_cert_manager_name else "no"
        return Ownership(
            False,
            reason=f"has {found} {CERT_MANAGER_CERTIFICATE_NAME} annotation, not "
            f'"{adopt_from}", so spec.secretAdoption does not cover it',
        )
    return Ownership(writable=True, adopting=True)


def foreign(metadata: Mapping[str, str]) -> dict[str, str]:
    """Labels or annotations that no issuer owns (replication tools', users'), to keep.

    Args:
        metadata: a Secret's labels or annotations.

    Returns:
        Those whose key is not under certmint's or cert-manager's prefixes.
    """
    return {k: v for k, v in metadata.items() if not k.startswith(_ISSUER_PREFIXES)}
