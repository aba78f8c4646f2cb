"""``certmint inspect``: decode a certificate file or a certmint Secret's data.

Shows identity, claims, SANs, validity, key and whether the chain verifies against the
trust anchors (the Secret's ``ca.crt``, or ``--ca FILE``). This module reads bytes it is
given; the CLI fetches the Secret. It never reads or prints ``tls.key`` and skips any
private key found in a PEM file.

Exit codes: 0 when the certificate is currently valid and its chain verified (or there
was nothing to verify against); 1 when it is expired, not yet valid, has malformed
claims, or its chain fails; 2 when the input cannot be read.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from certmint.pki import claims, decode, errors, verify

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_UNREADABLE = 2

ChainResult = Literal["verified", "failed", "skipped"]


@dataclasses.dataclass(frozen=True)
class ChainCheck:
    """Outcome of verifying the chain against the trust anchors."""

    result: ChainResult
    message: str


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything ``inspect`` shows, before rendering."""

    source: str
    leaf: decode.CertificateView
    claims_error: str | None
    chain: tuple[decode.CertificateView, ...]
    trust_anchors: tuple[decode.CertificateView, ...]
    chain_check: ChainCheck
    validity: Literal["valid", "expired", "notYetValid"]
    remaining: datetime.timedelta

    @property
    def exit_code(self) -> int:
        """0 when nothing is wrong, else 1 (see the module docstring)."""
        healthy = (
            self.validity == "valid"
            and self.claims_error is None
            and self.chain_check.result != "failed"
        )
        return EXIT_OK if healthy else EXIT_PROBLEM


class InputError(Exception):
    """The input could not be read as certificates."""


def run(
    path: str | None,
    secret_data: Mapping[str, bytes] | None,
    as_json: bool,
    now: datetime.datetime,
    *,
    ca_pem: bytes | None = None,
    claims_oids: claims.ClaimsOids = claims.DEFAULT_OIDS,
) -> tuple[str, int]:
    """Inspect a certificate file or a Secret's decoded data.

    Args:
        path: A PEM (or single DER) certificate file; ``None`` when ``secret_data`` is given.
        secret_data: A Secret's decoded data; ``tls.crt`` is read, ``ca.crt`` when present.
            ``tls.key`` and every other key are ignored.
        as_json: Render JSON instead of a table.
        now: The current time (aware).
        ca_pem: Trust anchors to verify against; overrides the Secret's ``ca.crt``.
        claims_oids: The OIDs to read the claims extension under (``--claims-oid``).

    Returns:
        The text to print and the exit code.
    """
    try:
        source, certificates, anchors = _read_input(path, secret_data, ca_pem)
    except InputError as err:
        if as_json:
            return json.dumps({"error": str(err)}, indent=2), EXIT_UNREADABLE
        return f"error: {err}", EXIT_UNREADABLE
    report = build_report(source, certificates, anchors, now, claims_oids=claims_oids)
    text = json.dumps(to_json(report), indent=2) if as_json else render_table(report, now)
    return text, report.exit_code


def _read_input(
    path: str | None, secret_data: Mapping[str, bytes] | None, ca_pem: bytes | None
) -> tuple[str, list[x509.Certificate], list[x509.Certificate]]:
    if path is not None:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise InputError(f"cannot read {path}: {err.strerror}") from None
        source = path
    elif secret_data is not None:
        if "tls.crt" not in secret_data:
            raise InputError("the Secret has no tls.crt")
        data = secret_data["tls.crt"]
        source = "tls.crt"
        if ca_pem is None:
            ca_pem = secret_data.get("ca.crt")
    else:
        raise InputError("give a certificate file or a Secret")
    certificates = _load_certificates(data, source)
    anchors = _load_certificates(ca_pem, "ca.crt") if ca_pem else []
    return source, certificates, anchors


def _load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    if b"-----BEGIN" in data:
        try:
            return decode.load_pem_certificates(data)
        except errors.PKIError:
            raise InputError(f"{source}: no readable PEM certificate") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise InputError(f"{source}: neither PEM nor DER certificate data") from None


def build_report(
    source: str,
    certificates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: datetime.datetime,
    *,
    claims_oids: claims.ClaimsOids = claims.DEFAULT_OIDS,
) -> Report:
    """Decode the certificates and check the chain.

    Args:
        source: Where the certificates came from, for the heading.
        certificates: The leaf first, then its intermediates.
        anchors: Trust anchors; empty to skip the chain check.
        now: The current time (aware).
        claims_oids: The OIDs to read the claims extension under.

    Returns:
        The report.
    """
    leaf, *intermediates = certificates
    view, claims_error = _describe_leniently(leaf, claims_oids)
    if not anchors:
        check = ChainCheck("skipped", "no trust anchors given (ca.crt)")
    else:
        try:
            verify.verify_chain(leaf, intermediates, anchors, now)
            check = ChainCheck("verified", f"verified against {len(anchors)} trust anchor(s)")
        except errors.VerificationError as err:
            check = ChainCheck("failed", str(err))
    if now < view.not_before:
        validity: Literal["valid", "expired", "notYetValid"] = "notYetValid"
    elif now >= view.not_after:
        validity = "expired"
    else:
        validity = "valid"
    return Report(
        source=source,
        leaf=view,
        claims_error=claims_error,
        chain=tuple(_describe_leniently(cert, claims_oids)[0] for cert in intermediates),
        trust_anchors=tuple(_describe_leniently(cert, claims_oids)[0] for cert in anchors),
        chain_check=check,
        validity=validity,
        remaining=view.not_after - now,
    )


def _describe_leniently(
    certificate: x509.Certificate, claims_oids: claims.ClaimsOids
) -> tuple[decode.CertificateView, str | None]:
    try:
        return decode.describe(certificate, claims_oids=claims_oids), None
    except errors.PKIError as err:
        return decode.describe(certificate, strict=False, claims_oids=claims_oids), str(err)


def to_json(report: Report) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    return {
        "source": report.source,
        "certificate": report.leaf.to_json_dict(),
        "claimsError": report.claims_error,
        "validity": {
            "status": report.validity,
            "remainingSeconds": int(report.remaining.total_seconds()),
        },
        "chain": [view.to_json_dict() for view in report.chain],
        "trustAnchors": [view.to_json_dict() for view in report.trust_anchors],
        "chainCheck": {"result": report.chain_check.result, "message": report.chain_check.message},
    }


def render_table(report: Report, now: datetime.datetime) -> str:
    """The report as aligned ``label  value`` lines for a terminal."""
    leaf = report.leaf
    rows: list[tuple[str, str]] = [
        ("Identity", leaf.identity or "(none)"),
        (
            "Claims",
            _claims_text(leaf.claims) if report.claims_error is None else report.claims_error,
        ),
        ("Subject", leaf.subject or "(empty)"),
        ("Issuer", leaf.issuer or "(empty)"),
        ("DNS names", ", ".join(leaf.dns_names) or "-"),
        ("IP addresses", ", ".join(leaf.ip_addresses) or "-"),
        ("URIs", ", ".join(leaf.uris) or "-"),
        ("Emails", ", ".join(leaf.email_addresses) or "-"),
        ("Not before", _time_text(leaf.not_before)),
        ("Not after", _time_text(leaf.not_after)),
        ("Status", _validity_text(report, now)),
        ("Key", leaf.key),
        ("Serial", leaf.serial_number_hex),
        ("SHA-256", leaf.fingerprint_sha256),
        ("CA", "yes" if leaf.is_ca else "no"),
        ("Signature", leaf.signature_algorithm),
    ]
    rows += [
        ("Extension", f"{oid} ({'critical' if critical else 'non-critical'})")
        for oid, critical in leaf.other_extensions
    ]
    for index, view in enumerate(report.chain, start=1):
        rows.append(
            (
                f"Chain [{index}]",
                f"{view.subject or '(empty)'} (until {_time_text(view.not_after)})",
            )
        )
    for view in report.trust_anchors:
        rows.append(
            ("Trust anchor", f"{view.subject or '(empty)'} sha256:{view.fingerprint_sha256[:16]}")
        )
    rows.append(("Chain check", f"{report.chain_check.result}: {report.chain_check.message}"))
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"Certificate from {report.source}"]
    lines += [f"  {label.ljust(width)}{value}" for label, value in rows]
    return "\n".join(lines)


def _claims_text(claims: Mapping[str, tuple[str, ...]]) -> str:
    if not claims:
        return "(none)"
    return "; ".join(f"{key}={','.join(values)}" for key, values in claims.items())


def _time_text(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _validity_text(report: Report, now: datetime.datetime) -> str:
    if report.validity == "expired":
        return f"EXPIRED {format_duration(-report.remaining)} ago"
    if report.validity == "notYetValid":
        return f"NOT YET VALID (starts in {format_duration(report.leaf.not_before - now)})"
    return f"valid, expires in {format_duration(report.remaining)}"


def format_duration(span: datetime.timedelta) -> str:
    """A compact duration such as ``3d4h``, ``59m12s`` or ``0s``."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts[:2]) or "0s"
