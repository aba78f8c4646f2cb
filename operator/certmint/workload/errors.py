"""Errors of the workload library.

Each error carries a CamelCase ``reason`` code (stable, for logs, metrics and tests)
and a ``message`` in words. Neither ever contains key material.
"""

from __future__ import annotations


class WorkloadError(Exception):
    """Base class of the workload library's errors.

    Attributes:
        reason: A CamelCase code, e.g. ``"KeyMismatch"`` or ``"TrustDomainMismatch"``.
        message: What went wrong, in words a person can act on.
    """

    reason: str
    message: str

    def __init__(self, reason: str, message: str) -> None:
        """Create the error.

        Args:
            reason: CamelCase reason code.
            message: The explanation. Never key material.
        """
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class CredentialsError(WorkloadError):
    """The mounted credentials cannot be used (missing, unreadable, or key and certificate
    do not belong together).

    Reasons: ``FileMissing``, ``CertificateUnreadable``, ``KeyUnreadable``,
    ``KeyMismatch``, ``TrustBundleUnreadable``, ``TLSRejected``.
    """


class PeerError(WorkloadError):
    """The peer of a TLS connection cannot be identified, or is outside the expected
    trust domain.

    Reasons: ``NoCertificate``, ``NotVerified``, ``CertificateUnreadable``, ``NoIdentity``,
    ``SeveralIdentities``, ``InvalidIdentity``, ``TrustDomainMismatch``, ``InvalidClaims``.
    """
