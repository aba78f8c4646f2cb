"""Verifying a workload certificate chain and its SPIFFE identity.

Chains of ECDSA and RSA certificates go through `cryptography.x509.verification`
(RFC 5280 path building with the Web PKI profile), with its end-entity extension policy
relaxed in two places that the Web PKI rules get wrong for workload certificates: the
EKU is not required to contain clientAuth, and a SAN is not required when the subject
names the certificate. cryptography's verifier refuses Ed25519 keys outright, so chains
with an Ed25519 key or signature are checked by `_verify_path_basic` below instead.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509 import verification

from certmint.pki import decode, errors, spiffe

VerificationError = errors.VerificationError

MAX_CHAIN_DEPTH = 8


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    now: datetime.datetime,
    expected_trust_domain: str | None = None,
) -> None:
    """Check that a leaf chains to a trusted root and carries a sound SPIFFE identity.

    Verified: signatures along a path from ``leaf`` through some of ``intermediates`` to
    one of ``roots``; validity periods at ``now``; CA basic constraints, key usage and
    path length on issuers; name constraints; that the leaf is not a CA and has no
    critical extension the verifier does not understand; that the leaf carries at most
    one ``spiffe://`` URI SAN, that it is a valid SPIFFE ID, and, when
    ``expected_trust_domain`` is given, that there is one and it is in that domain.

    Not verified: revocation (there are no CRLs or OCSP); DNS names, IPs or other SANs
    against any expected peer name; the extended key usages; that the peer holds the
    private key (a TLS handshake proves that); the meaning of claims or any issuance
    policy. The Ed25519 path (see the module docstring) checks name constraints on DNS
    names only and refuses chains whose constraints name other kinds of names.

    Args:
        leaf: The certificate to verify.
        intermediates: Untrusted certificates that may help build the path.
        roots: Trust anchors.
        now: The verification time (aware).
        expected_trust_domain: When set, the leaf must carry a SPIFFE ID in this domain.

    Raises:
        VerificationError: ``reason`` is ``ChainInvalid`` when no valid path exists,
            ``IdentityInvalid`` for a missing, repeated or malformed SPIFFE ID, and
            ``TrustDomainMismatch`` for an ID from another trust domain.
    """
    if not roots:
        raise VerificationError(
            "ca.crt", "no trust anchors to verify against", reason="ChainInvalid"
        )
    if _uses_ed25519([leaf, *intermediates, *roots]):
        _verify_path_basic(leaf, list(intermediates), list(roots), now)
    else:
        _verify_path_webpki(leaf, list(intermediates), list(roots), now)
    _verify_identity(leaf, expected_trust_domain)


def chains_to(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    now: datetime.datetime,
) -> bool:
    """Whether `verify_chain` accepts the leaf (with no trust domain expectation)."""
    try:
        verify_chain(leaf, intermediates, roots, now)
    except VerificationError:
        return False
    return True


def _uses_ed25519(certificates: Sequence[x509.Certificate]) -> bool:
    return any(isinstance(cert.public_key(), ed25519.Ed25519PublicKey) for cert in certificates)


def _sans_or_none(certificate: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _san_policy(
    _policy: verification.Policy | None,
    certificate: x509.Certificate,
    san: x509.SubjectAlternativeName | None,
) -> None:
    # RFC 5280 4.2.1.6: with an empty subject the SAN must exist and be critical.
    if len(certificate.subject) > 0:
        return
    if san is None:
        raise ValueError("a certificate with an empty subject needs a subjectAltName")
    extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    if not extension.critical:
        raise ValueError("an empty subject needs a critical subjectAltName")


def _verify_path_webpki(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
    now: datetime.datetime,
) -> None:
    ee_policy = (
        verification.ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, None)
        .may_be_present(x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, _san_policy)
    )
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(roots))
        .time(now)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as err:
        raise VerificationError(
            "tls.crt", f"chain verification failed: {err}", reason="ChainInvalid"
        ) from None


def _fail(message: str) -> VerificationError:
    return VerificationError("tls.crt", message, reason="ChainInvalid")


def _verify_path_basic(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
    now: datetime.datetime,
) -> None:
    _check_validity(leaf, now)
    _check_critical_extensions(leaf)
    if _basic_constraints(leaf).ca:
        raise _fail("the leaf is a CA certificate")
    try:
        _san_policy(None, leaf, _sans_or_none(leaf))
    except ValueError as err:
        raise _fail(str(err)) from None
    current, used, path = leaf, [leaf], [leaf]
    for depth in range(MAX_CHAIN_DEPTH):
        anchor = _find_issuer(current, roots, used)
        if anchor is not None:
            _check_issuer(anchor, depth, now)
            path.append(anchor)
            _check_name_constraints(leaf, path[1:])
            return
        issuer = _find_issuer(current, intermediates, used)
        if issuer is None:
            break
        _check_issuer(issuer, depth, now)
        used.append(issuer)
        path.append(issuer)
        current = issuer
    raise _fail(f"no path from {_label(leaf)} to a trusted root")


def _label(certificate: x509.Certificate) -> str:
    """The subject, or for an empty subject the first SAN, for messages."""
    if len(certificate.subject) > 0:
        return repr(certificate.subject.rfc4514_string())
    sans = _sans_or_none(certificate)
    if sans is not None and len(sans) > 0:
        return repr(str(next(iter(sans)).value))
    return f"serial {certificate.serial_number:x}"


def _find_issuer(
    child: x509.Certificate, candidates: list[x509.Certificate], used: list[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate in used or candidate.subject != child.issuer:
            continue
        try:
            child.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


def _check_validity(certificate: x509.Certificate, now: datetime.datetime) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise _fail(
            f"{_label(certificate)} is not valid at {now.isoformat()} "
            f"(valid from {certificate.not_valid_before_utc.isoformat()} "
            f"to {certificate.not_valid_after_utc.isoformat()})"
        )


def _check_critical_extensions(certificate: x509.Certificate) -> None:
    for extension in certificate.extensions:
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            raise _fail(f"unhandled critical extension {extension.oid.dotted_string}")


def _basic_constraints(certificate: x509.Certificate) -> x509.BasicConstraints:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return x509.BasicConstraints(ca=False, path_length=None)


def _check_issuer(
    issuer: x509.Certificate, intermediates_below: int, now: datetime.datetime
) -> None:
    name = issuer.subject.rfc4514_string()
    _check_validity(issuer, now)
    _check_critical_extensions(issuer)
    constraints = _basic_constraints(issuer)
    if not constraints.ca:
        raise _fail(f"issuer {name!r} is not a CA")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise _fail(f"issuer {name!r} has no KeyUsage") from None
    if not usage.key_cert_sign:
        raise _fail(f"issuer {name!r} may not sign certificates (no keyCertSign)")
    if constraints.path_length is not None and intermediates_below > constraints.path_length:
        raise _fail(f"issuer {name!r} allows {constraints.path_length} intermediates below it")


def _check_name_constraints(leaf: x509.Certificate, issuers: list[x509.Certificate]) -> None:
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = sans.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    for issuer in issuers:
        try:
            constraints = issuer.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            continue
        permitted = constraints.permitted_subtrees or []
        excluded = constraints.excluded_subtrees or []
        if any(not isinstance(tree, x509.DNSName) for tree in (*permitted, *excluded)):
            raise _fail(
                "name constraints other than DNS names are not supported for Ed25519 chains"
            )
        for name in dns_names:
            if permitted and not any(_within(name, tree.value) for tree in permitted):
                raise _fail(f"{name!r} is outside the issuer's permitted DNS names")
            if any(_within(name, tree.value) for tree in excluded):
                raise _fail(f"{name!r} is in the issuer's excluded DNS names")


def _within(name: str, subtree: str) -> bool:
    name, subtree = name.lower(), subtree.lower()
    if subtree.startswith("."):
        return name.endswith(subtree)
    return name == subtree or name.endswith("." + subtree)


def _verify_identity(leaf: x509.Certificate, expected_trust_domain: str | None) -> None:
    candidates = decode.spiffe_uris(leaf)
    if len(candidates) > 1:
        raise VerificationError(
            "uris",
            f"the leaf carries {len(candidates)} SPIFFE IDs; an SVID has exactly one",
            reason="IdentityInvalid",
        )
    if not candidates:
        if expected_trust_domain is not None:
            raise VerificationError(
                "uris", "the leaf carries no SPIFFE ID", reason="IdentityInvalid"
            )
        return
    try:
        identity = spiffe.parse_spiffe_id(candidates[0])
    except errors.PKIError as err:
        raise VerificationError("uris", err.message, reason="IdentityInvalid") from None
    if expected_trust_domain is not None and identity.trust_domain != expected_trust_domain:
        raise VerificationError(
            "uris",
            f"{identity} is not in trust domain {expected_trust_domain!r}",
            reason="TrustDomainMismatch",
        )
