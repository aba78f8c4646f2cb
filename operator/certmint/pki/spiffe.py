"""SPIFFE IDs: parsing and validation by the SPIFFE-ID specification's rules.

A SPIFFE ID is ``spiffe://<trust domain><path>``:

* the scheme is exactly ``spiffe`` (lowercase) followed by ``://``;
* the trust domain is non-empty, at most 255 bytes, of ``[a-z0-9._-]`` only (so no
  uppercase, port, userinfo or percent-encoding);
* the path is empty or a series of ``/segment`` where each segment is non-empty, of
  ``[a-zA-Z0-9._-]``, and neither ``.`` nor ``..``; no trailing slash, query or fragment;
* the whole ID is at most 2048 bytes.

Kubernetes workloads get ``spiffe://<td>/ns/<namespace>/sa/<serviceaccount>``.
"""

from __future__ import annotations

import dataclasses
import string

from certmint.pki import errors

SCHEME_PREFIX = "spiffe://"
MAX_TRUST_DOMAIN_BYTES = 255
MAX_ID_BYTES = 2048

_TRUST_DOMAIN_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")
_PATH_SEGMENT_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")


def validate_trust_domain(td: str, field: str = "trustDomain") -> str:
    """Check a trust domain name.

    Args:
        td: The trust domain, e.g. ``"cluster.local"``.
        field: The spec field to name in an error.

    Returns:
        The trust domain, unchanged.

    Raises:
        PKIError: The name is empty, too long, or uses a character outside
            ``[a-z0-9._-]`` (the message says which).
    """
    if not td:
        raise errors.PKIError(field, "the trust domain is empty")
    if len(td.encode()) > MAX_TRUST_DOMAIN_BYTES:
        raise errors.PKIError(
            field, f"the trust domain is longer than {MAX_TRUST_DOMAIN_BYTES} bytes"
        )
    for ch in td:
        if ch not in _TRUST_DOMAIN_CHARS:
            hint = "; trust domains are lowercase" if ch.isupper() else ""
            raise errors.PKIError(
                field, f"the trust domain {td!r} contains {ch!r}, outside [a-z0-9._-]{hint}"
            )
    return td


def validate_path(path: str, field: str = "uris") -> str:
    """Check the path part of a SPIFFE ID.

    Args:
        path: ``""`` or ``/segment/...``.
        field: The spec field to name in an error.

    Returns:
        The path, unchanged.

    Raises:
        PKIError: The path breaks a SPIFFE rule (the message says which).
    """
    if not path:
        return path
    if not path.startswith("/"):
        raise errors.PKIError(field, f"the SPIFFE path {path!r} must start with '/'")
    for segment in path[1:].split("/"):
        if not segment:
            raise errors.PKIError(
                field, f"the SPIFFE path {path!r} has an empty segment or trailing '/'"
            )
        if segment in {".", ".."}:
            raise errors.PKIError(field, f"the SPIFFE path {path!r} has a {segment!r} segment")
        for ch in segment:
            if ch not in _PATH_SEGMENT_CHARS:
                raise errors.PKIError(
                    field, f"the SPIFFE path {path!r} contains {ch!r}, outside [a-zA-Z0-9._-]"
                )
    return path


@dataclasses.dataclass(frozen=True, order=True)
class SpiffeId:
    """A valid SPIFFE ID.

    Attributes:
        trust_domain: e.g. ``"cluster.local"``.
        path: ``""`` for the trust domain itself, else ``"/ns/default/sa/api"`` style.
    """

    trust_domain: str
    path: str

    def __post_init__(self) -> None:
        validate_trust_domain(self.trust_domain, "uris")
        validate_path(self.path, "uris")
        if len(str(self).encode()) > MAX_ID_BYTES:
            raise errors.PKIError("uris", f"the SPIFFE ID is longer than {MAX_ID_BYTES} bytes")

    def __str__(self) -> str:
        return f"{SCHEME_PREFIX}{self.trust_domain}{self.path}"

    @property
    def uri(self) -> str:
        """The ID as a URI string (same as ``str(self)``)."""
        return str(self)

    def member_of(self, trust_domain: str) -> bool:
        """Whether the ID belongs to the given trust domain."""
        return self.trust_domain == trust_domain


def is_spiffe_uri(uri: str) -> bool:
    """Whether a URI claims to be a SPIFFE ID (scheme ``spiffe``, in any letter case).

    Used to spot second identities: ``SPIFFE://x`` is not a valid ID, but must not slip
    past the one-identity rule either.
    """
    return uri.lower().startswith("spiffe:")


def parse_spiffe_id(uri: str, field: str = "uris") -> SpiffeId:
    """Parse and validate a SPIFFE ID.

    Args:
        uri: e.g. ``"spiffe://cluster.local/ns/default/sa/api"``.
        field: The spec field to name in an error.

    Returns:
        The parsed ID.

    Raises:
        PKIError: The text is not a valid SPIFFE ID (the message says which rule).
    """
    if not isinstance(uri, str):
        raise errors.PKIError(field, f"a SPIFFE ID must be a string, not {type(uri).__name__}")
    if len(uri.encode()) > MAX_ID_BYTES:
        raise errors.PKIError(field, f"the SPIFFE ID is longer than {MAX_ID_BYTES} bytes")
    if not uri.startswith(SCHEME_PREFIX):
        raise errors.PKIError(field, f"{uri!r} does not start with {SCHEME_PREFIX!r}")
    rest = uri[len(SCHEME_PREFIX) :]
    slash = rest.find("/")
    trust_domain, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    if "@" in trust_domain:
        raise errors.PKIError(field, f"{uri!r} has userinfo; SPIFFE IDs do not allow it")
    if ":" in trust_domain:
        raise errors.PKIError(field, f"{uri!r} has a port; SPIFFE IDs do not allow it")
    for mark, name in (("?", "query"), ("#", "fragment")):
        if mark in uri:
            raise errors.PKIError(field, f"{uri!r} has a {name}; SPIFFE IDs do not allow it")
    try:
        return SpiffeId(validate_trust_domain(trust_domain, field), validate_path(path, field))
    except errors.PKIError as err:
        raise errors.PKIError(field, f"{uri!r}: {err.message}") from None


def workload_id(trust_domain: str, namespace: str, service_account: str) -> SpiffeId:
    """The Kubernetes-convention identity of a ServiceAccount.

    Args:
        trust_domain: The issuer's trust domain.
        namespace: The workload's namespace.
        service_account: The ServiceAccount name.

    Returns:
        ``spiffe://<trust_domain>/ns/<namespace>/sa/<service_account>``.

    Raises:
        PKIError: ``trustDomain`` for a bad trust domain; ``serviceAccountName`` when the
            names cannot form a SPIFFE path (Kubernetes names always can).
    """
    validate_trust_domain(trust_domain)
    path = f"/ns/{namespace}/sa/{service_account}"
    try:
        return SpiffeId(trust_domain, validate_path(path, "serviceAccountName"))
    except errors.PKIError as err:
        raise errors.PKIError("serviceAccountName", err.message) from None
