"""Checking that a snapshot of the mounted files is a usable set of credentials.

A set is usable when ``tls.crt`` holds at least one certificate, ``tls.key`` holds
the private key of the first one, and ``ca.crt`` holds at least one certificate.
The checks run in that order and the first failure wins, with its own reason code,
so a torn update (a new certificate next to the old key) is reported as
``KeyMismatch`` and never loaded.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from certmint.pki import errors as pki_errors
from certmint.pki import keys
from certmint.workload import errors, files, peers


@dataclasses.dataclass(frozen=True)
class Generation:
    """One checked set of credentials, as read from the mounted directory.

    It keeps the checked PEM bytes, key included (never shown in ``repr``): the
    kubelet deletes a generation's directory right after the next swap, and a
    rejected update must leave this one usable for new contexts.

    Attributes:
        source: The directory the files were read from.
        chain_pem: ``tls.crt`` as read.
        key_pem: ``tls.key`` as read.
        chain: ``tls.crt``: the leaf, then intermediates.
        trust_anchors: ``ca.crt``: the certificates peers must chain to.
        trust_pem: The trust anchors re-encoded as PEM text, for
            `ssl.SSLContext.load_verify_locations`.
        identity: The leaf's SPIFFE ID, or ``None`` when it has none.
        signature: The directory fingerprint this generation was read under.
    """

    source: pathlib.Path
    chain_pem: bytes = dataclasses.field(repr=False, compare=False)
    key_pem: bytes = dataclasses.field(repr=False, compare=False)
    chain: tuple[x509.Certificate, ...]
    trust_anchors: tuple[x509.Certificate, ...]
    trust_pem: str = dataclasses.field(repr=False)
    identity: str | None
    signature: files.Signature = dataclasses.field(repr=False)

    @property
    def certificate(self) -> x509.Certificate:
        """The leaf certificate."""
        return self.chain[0]

    @property
    def not_after(self) -> datetime.datetime:
        """When the leaf expires (UTC)."""
        return self.certificate.not_valid_after_utc

    @property
    def serial_number(self) -> int:
        """The leaf's serial number."""
        return self.certificate.serial_number


def _certificates(pem: bytes, reason: str, name: str) -> tuple[x509.Certificate, ...]:
    try:
        return tuple(x509.load_pem_x509_certificates(pem))
    except ValueError:
        raise errors.CredentialsError(reason, f"{name} holds no readable PEM certificate") from None


def check(snapshot: files.Snapshot) -> Generation:
    """Check a snapshot and describe it.

    Does not check validity periods, that the leaf chains to ``ca.crt``, or anything
    about the identity: an expired or foreign certificate is still the workload's
    own, and peers will judge it.

    Args:
        snapshot: The files as read together.

    Returns:
        The checked generation.

    Raises:
        CredentialsError: ``CertificateUnreadable``, ``KeyUnreadable``, ``KeyMismatch``
            or ``TrustBundleUnreadable``; the message names the file, never key bytes.
    """
    chain = _certificates(snapshot.chain_pem, "CertificateUnreadable", files.CERTIFICATE_FILE)
    try:
        private_key = keys.load_private_key_pem(snapshot.key_pem, files.KEY_FILE)
    except pki_errors.PKIError as err:
        raise errors.CredentialsError("KeyUnreadable", str(err)) from None
    if private_key.public_key() != chain[0].public_key():
        raise errors.CredentialsError(
            "KeyMismatch",
            f"{files.KEY_FILE} is not the key of the certificate in {files.CERTIFICATE_FILE} "
            f"(serial {chain[0].serial_number:x}); is an update half-written?",
        )
    trust_anchors = _certificates(snapshot.trust_pem, "TrustBundleUnreadable", files.TRUST_FILE)
    try:
        own_identity: str | None = str(peers.spiffe_id_of(chain[0]))
    except errors.PeerError:
        own_identity = None
    return Generation(
        source=snapshot.source,
        chain_pem=snapshot.chain_pem,
        key_pem=snapshot.key_pem,
        chain=chain,
        trust_anchors=trust_anchors,
        trust_pem="".join(
            anchor.public_bytes(serialization.Encoding.PEM).decode("ascii")
            for anchor in trust_anchors
        ),
        identity=own_identity,
        signature=snapshot.signature,
    )
