"""Domain errors of the PKI core.

Every problem the core finds is a `PKIError` that names the spec field it is about,
so the operator can turn it into a condition message ("dnsNames[2]: ...") without
parsing text, and the reason code becomes the condition and Event reason.
"""

from __future__ import annotations

from typing import Literal

CAReason = Literal["CAInvalid", "CAExpired", "CANotYetValid", "CAKeyMismatch", "CANotACA"]


class PKIError(ValueError):
    """A request, a key or a certificate the PKI core refuses to work with.

    Attributes:
        field: The spec field path the problem is about, e.g. ``"dnsNames[2]"``,
            ``"privateKey.size"``, ``"claims.role"`` or ``"extensions[0].oid"``.
        reason: A CamelCase code suitable for a condition reason.
        message: The human explanation, without the field name.
    """

    field: str
    reason: str
    message: str

    def __init__(self, field: str, message: str, *, reason: str = "InvalidSpec") -> None:
        """Create the error.

        Args:
            field: The spec field path the problem is about.
            message: What is wrong, in words a user can act on. Never key material.
            reason: CamelCase reason code.
        """
        super().__init__(field, message, reason)
        self.field = field
        self.message = message
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(field={self.field!r}, reason={self.reason!r}, "
            f"message={self.message!r})"
        )


class CAError(PKIError):
    """The issuing CA itself cannot be used (bad, expired, mismatched or not a CA)."""

    def __init__(self, field: str, message: str, *, reason: CAReason = "CAInvalid") -> None:
        """Create the error.

        Args:
            field: Where the CA came from, e.g. ``"tls.crt"`` or ``"tls.key"``.
            message: What is wrong with the CA.
            reason: One of ``CAInvalid``, ``CAExpired``, ``CANotYetValid``,
                ``CAKeyMismatch``, ``CANotACA``.
        """
        super().__init__(field, message, reason=reason)


class VerificationError(PKIError):
    """A certificate chain failed verification (see `certmint.pki.verify`)."""
