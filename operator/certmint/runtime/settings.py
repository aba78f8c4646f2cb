"""The operator's knobs, as ``certmint run`` was given them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from cryptography import x509

from certmint.core import outcome
from certmint.pki import claims, renewal


@dataclasses.dataclass(frozen=True)
class Settings:
    """Operator knobs (see docs/operations.md).

    Attributes:
        operator_namespace: Where ClusterIssuer CA Secrets and the leader Lease live.
        workers: Certificates reconciled concurrently.
        renewal_rate: Scheduled re-issues (renewals, CA rotation) per second, at most.
        renewal_burst: Scheduled re-issues that may start at once.
        event_qps: Normal Events posted per second, at most, after ``event_burst``;
            0 posts every one (`certmint.runtime.events`).
        event_burst: Normal Events that may be posted at once.
        retry_base: First delay after a failed issuance.
        retry_cap: Longest delay between failed issuances.
        issuer_resync: How often a ready issuer re-reads its CA Secret.
        claims_oid: The OID new certificates carry their claims under (``--claims-oid``).
        manage_cluster_issuers: Write ClusterIssuers' status, generate and rotate their CAs
            and distribute their trust; a shard without ``--manage-cluster-issuers`` only
            reads their CAs, to sign (docs/performance.md, "Scaling out").
    """

    operator_namespace: str = "certmint-system"
    workers: int = 16
    renewal_rate: float = 50.0
    renewal_burst: int = 20
    event_qps: float = 10.0
    event_burst: int = 100
    retry_base: timedelta = renewal.DEFAULT_BACKOFF_BASE
    retry_cap: timedelta = renewal.DEFAULT_BACKOFF_CAP
    issuer_resync: timedelta = timedelta(seconds=30)
    claims_oid: x509.ObjectIdentifier = claims.CLAIMS_OID
    manage_cluster_issuers: bool = True

    @property
    def backoff(self) -> outcome.Backoff:
        return outcome.Backoff(self.retry_base, self.retry_cap)
