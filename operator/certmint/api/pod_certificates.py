"""An issuer's ``spec.podCertificates``: it signs Kubernetes PodCertificateRequests.

With this field an Issuer or ClusterIssuer becomes the signer ``signerName`` of the
``certificates.k8s.io`` PodCertificateRequest API (docs/pod-certificates.md): the kubelet
asks it for a pod's certificate, the key never leaves the node. The issuer's ``policy``
applies as it does to Certificates; this field adds what only a pod certificate needs.

```yaml
podCertificates:
  signerName: certmint.io/workloads   # required; certmint.io/<name>, one issuer per name
  keyTypes: [ECDSAP256, ED25519]      # optional: the projection keyTypes accepted
  duration: 1h                        # optional: lifetime asked of the CA (default: the
                                      # policy's defaultDuration), never past the request's
                                      # maxExpirationSeconds nor the policy's maxDuration
```
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Final

from certmint.api import fields

#: The signer names certmint answers for; the deploy manifests grant ``sign`` and
#: ``attest`` on ``certmint.io/*`` and nothing else.
SIGNER_DOMAIN: Final = "certmint.io"
SIGNER_NAME: Final = re.compile(r"certmint\.io/[a-z0-9](?:[-a-z0-9.]{0,61}[a-z0-9])?")
#: The ``keyType`` values of a ``podCertificate`` projection that certmint can certify
#: (ECDSAP521 is valid in the API, but certmint's PKI core does not use P-521).
KEY_TYPES: Final = ("ECDSAP256", "ECDSAP384", "ED25519", "RSA3072", "RSA4096")
#: The API server refuses a pod certificate that lives less than an hour.
MIN_LIFETIME: Final = timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class PodCertificatesSpec:
    """How an issuer signs PodCertificateRequests.

    Attributes:
        signer_name: The ``spec.signerName`` of the requests this issuer answers.
        key_types: The projection ``keyType`` values accepted; others are Denied.
        duration: The lifetime asked for; None means the policy's ``defaultDuration``.
    """

    signer_name: str
    key_types: tuple[str, ...] = KEY_TYPES
    duration: timedelta | None = None

    @property
    def cluster_trust_bundle_name(self) -> str:
        """The ClusterTrustBundle that publishes the trust anchors for this signer.

        The API server wants the signer name with ``/`` replaced by ``:``, then ``:``.
        """
        return f"{self.signer_name.replace('/', ':')}:bundle"


def parse(value: object, *, self_signed: bool) -> PodCertificatesSpec | None:
    """Parse ``spec.podCertificates`` (None when absent).

    Args:
        value: The raw field.
        self_signed: Whether the issuer is ``selfSigned`` (it cannot sign for a key it
            does not hold).

    Returns:
        The parsed field, or None.

    Raises:
        SpecError: The first field that cannot be used, with its path.
    """
    field = "spec.podCertificates"
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise fields.SpecError(field, "must be an object")
    if self_signed:
        raise fields.SpecError(
            field, "a selfSigned issuer cannot sign pod certificates; use a ca issuer"
        )
    signer = value.get("signerName")
    if not isinstance(signer, str) or not SIGNER_NAME.fullmatch(signer):
        raise fields.SpecError(
            f"{field}.signerName",
            f"must be {SIGNER_DOMAIN}/<name> (lower case letters, digits, '-' and '.'), "
            f"not {fields.quote(str(signer))}",
        )
    return PodCertificatesSpec(
        signer_name=signer,
        key_types=_key_types(value.get("keyTypes"), f"{field}.keyTypes"),
        duration=_duration(value.get("duration"), f"{field}.duration"),
    )


def _key_types(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return KEY_TYPES
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise fields.SpecError(field, "must be a non-empty list")
    for item in value:
        if item not in KEY_TYPES:
            raise fields.SpecError(
                field, f"{fields.quote(str(item))} is not one of {', '.join(KEY_TYPES)}"
            )
    return tuple(dict.fromkeys(value))


def _duration(value: object, field: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fields.SpecError(field, 'must be a duration such as "1h"')
    duration = fields.parse_duration(value, field)
    if duration < MIN_LIFETIME:
        raise fields.SpecError(
            field, "must be at least 1h: the API server refuses shorter pod certificates"
        )
    return duration
