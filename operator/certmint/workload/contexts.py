"""TLS contexts that follow credential rotation.

An `ssl.SSLContext` copies its certificate and key into each connection when the
connection is created, and cannot forget a trust anchor once loaded. So instead of
patching one context in place, `RotatingContext` builds a fresh, complete context
for the newest credentials and hands every new connection to it: it overrides the
public `wrap_socket` and `wrap_bio` methods, which `ssl`, `asyncio` (and so aiohttp,
uvicorn, hypercorn), `socketserver` and `http.client` call once per connection.
Connections already open keep the credentials they were made with.

Settings a framework applies to the context it was given (ALPN protocols, ciphers,
verify mode, versions, options, an SNI callback...) are copied onto each fresh
context, so the context behaves like an ordinary one whose files are kept current.
"""

from __future__ import annotations

import logging
import os
import pathlib
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from certmint.workload import errors, material

_log = logging.getLogger("certmint.workload")

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
# Python 3.13's defaults: reject malformed certificates, and accept any certificate
# in ca.crt as an anchor (an issuer may be an intermediate CA).
VERIFY_FLAGS = ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN


PeerCheck = Callable[[ssl.SSLObject | ssl.SSLSocket], None]
"""Called right after a handshake succeeds; raises `ssl.SSLCertVerificationError` to
fail the connection."""


class GenerationSource(Protocol):
    """Where a `RotatingContext` gets the credentials for its next connection."""

    def current(self) -> material.Generation:
        """The newest checked generation (checking the files if it is time to)."""
        ...


def _load_chain(context: ssl.SSLContext, chain_pem: bytes, key_pem: bytes) -> None:
    # ssl can only load a certificate and key from a file. An anonymous in-memory
    # file (Linux memfd) keeps the key off every file system; elsewhere a private
    # temporary directory is used for the moment of loading.
    pem = chain_pem.rstrip(b"\n") + b"\n" + key_pem
    if hasattr(os, "memfd_create") and pathlib.Path("/proc/self/fd").is_dir():
        descriptor = os.memfd_create("certmint-credentials", os.MFD_CLOEXEC)
        with os.fdopen(descriptor, "wb") as memory_file:
            memory_file.write(pem)
            memory_file.flush()
            context.load_cert_chain(f"/proc/self/fd/{descriptor}")
        return
    with tempfile.TemporaryDirectory(prefix="certmint-") as scratch:
        path = pathlib.Path(scratch) / "credentials.pem"
        path.touch(mode=0o600)
        path.write_bytes(pem)
        context.load_cert_chain(path)


def load_into(context: ssl.SSLContext, generation: material.Generation) -> None:
    """Load a generation's certificate chain, key and trust anchors into a context.

    Loads the bytes `material.check` accepted, not the files again: they may have
    changed or vanished since. OpenSSL also refuses a key that does not match the
    certificate.

    Args:
        context: A context with no credentials loaded yet.
        generation: The credentials.

    Raises:
        CredentialsError: ``TLSRejected`` when OpenSSL refuses them.
    """
    try:
        _load_chain(context, generation.chain_pem, generation.key_pem)
        context.load_verify_locations(cadata=generation.trust_pem)
    except ssl.SSLError as err:
        raise errors.CredentialsError(
            "TLSRejected", f"OpenSSL refused the credentials from {generation.source}: {err.reason}"
        ) from None
    except OSError as err:
        raise errors.CredentialsError(
            "TLSRejected", f"cannot load the credentials from {generation.source}: {err.strerror}"
        ) from None


def verification_error(message: str) -> ssl.SSLCertVerificationError:
    """An error that TLS stacks treat like any failed certificate verification.

    Args:
        message: Why the peer is not accepted.

    Returns:
        The error, with ``reason`` and ``verify_message`` set as OpenSSL's would be.
    """
    error = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    error.reason = "CERTIFICATE_VERIFY_FAILED"
    error.verify_code = 0
    error.verify_message = message
    return error


def _checking_classes(check: PeerCheck) -> tuple[type[ssl.SSLObject], type[ssl.SSLSocket]]:
    # ssl builds each connection object from the context's sslobject_class (asyncio's
    # way) or sslsocket_class; both run do_handshake, so the check runs before any
    # application data is exchanged, and a failure aborts the connection.
    class CheckingSSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            check(self)

    class CheckingSSLSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)
            check(self)

    return CheckingSSLObject, CheckingSSLSocket


def check_loadable(generation: material.Generation) -> None:
    """Check that OpenSSL accepts a generation, by loading it into a scratch context.

    Args:
        generation: Credentials that passed `material.check`.

    Raises:
        CredentialsError: ``TLSRejected`` when OpenSSL refuses them.
    """
    load_into(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), generation)


class RotatingContext(ssl.SSLContext):
    """An `ssl.SSLContext` whose new connections always use the newest credentials.

    Create it with `server_context` or `client_context`, or through
    `certmint.workload.Credentials`.
    """

    _source: GenerationSource
    _lock: threading.Lock
    _built: tuple[material.Generation, tuple[object, ...], ssl.SSLContext] | None
    _alpn: tuple[str, ...] | None
    _ciphers: str | None
    _ecdh_curve: str | None
    _checking: tuple[type[ssl.SSLObject], type[ssl.SSLSocket]] | None

    def __init__(
        self, protocol: int, source: GenerationSource, *, peer_check: PeerCheck | None = None
    ) -> None:
        """Create the context; `ssl.SSLContext.__new__` has already taken ``protocol``.

        Args:
            protocol: ``ssl.PROTOCOL_TLS_SERVER`` or ``ssl.PROTOCOL_TLS_CLIENT``.
            source: Supplies the credentials for each new connection.
            peer_check: Run on every connection right after its handshake.
        """
        super().__init__()
        del protocol  # consumed by __new__
        self._source = source
        self._lock = threading.Lock()
        self._built = None
        self._alpn = None
        self._ciphers = None
        self._ecdh_curve = None
        self._checking = None if peer_check is None else _checking_classes(peer_check)

    # Recorded so fresh contexts get them too: OpenSSL offers no way to read them back.
    def set_alpn_protocols(self, alpn_protocols: Iterable[str]) -> None:
        """Set ALPN protocols here and on every fresh context (see `ssl.SSLContext`)."""
        protocols = tuple(alpn_protocols)
        super().set_alpn_protocols(protocols)
        self._alpn = protocols

    def set_ciphers(self, cipherlist: str, /) -> None:
        """Set TLS 1.2 ciphers here and on every fresh context (see `ssl.SSLContext`)."""
        super().set_ciphers(cipherlist)
        self._ciphers = cipherlist

    def set_ecdh_curve(self, name: str, /) -> None:
        """Set the ECDH curve here and on every fresh context (see `ssl.SSLContext`)."""
        super().set_ecdh_curve(name)
        self._ecdh_curve = name

    def wrap_socket(  # noqa: PLR0917 - the signature of ssl.SSLContext.wrap_socket
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        """Wrap a socket using a context with the newest credentials."""
        return self.fresh().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        """Wrap a pair of BIOs (asyncio's way) using a context with the newest credentials."""
        return self.fresh().wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )

    def fresh(self) -> ssl.SSLContext:
        """The context the next connection will use: newest credentials, this one's settings.

        Returns:
            A plain `ssl.SSLContext`, cached until the credentials or settings change.

        Raises:
            CredentialsError: No context could ever be built (nothing to fall back on).
        """
        generation = self._source.current()
        settings = self._settings()
        with self._lock:
            built = self._built
        if built is not None and built[0] is generation and built[1] == settings:
            return built[2]
        try:
            context = self._build(generation)
        except errors.CredentialsError as err:
            if built is None:
                raise
            _log.warning("keeping the previous TLS context: %s", err)
            return built[2]
        with self._lock:
            self._built = (generation, settings, context)
        return context

    def _settings(self) -> tuple[object, ...]:
        return (
            self.options,
            self.verify_mode,
            self.check_hostname,
            self.verify_flags,
            self.minimum_version,
            self.maximum_version,
            self.post_handshake_auth,
            self.hostname_checks_common_name,
            self.sni_callback,
            self.keylog_filename,
            self.num_tickets if self.protocol == ssl.PROTOCOL_TLS_SERVER else None,
            self._alpn,
            self._ciphers,
            self._ecdh_curve,
        )

    def _build(self, generation: material.Generation) -> ssl.SSLContext:
        context = ssl.SSLContext(self.protocol)
        context.options = self.options
        context.minimum_version = self.minimum_version
        context.maximum_version = self.maximum_version
        context.verify_flags = self.verify_flags
        # check_hostname=True requires CERT_REQUIRED, so the order matters.
        if self.check_hostname:
            context.verify_mode = self.verify_mode
            context.check_hostname = True
        else:
            context.check_hostname = False
            context.verify_mode = self.verify_mode
        context.post_handshake_auth = self.post_handshake_auth
        context.hostname_checks_common_name = self.hostname_checks_common_name
        if self.keylog_filename:
            context.keylog_filename = self.keylog_filename
        if self.protocol == ssl.PROTOCOL_TLS_SERVER:
            context.sni_callback = self.sni_callback
            context.num_tickets = self.num_tickets
        if self._alpn is not None:
            context.set_alpn_protocols(self._alpn)
        if self._ciphers is not None:
            context.set_ciphers(self._ciphers)
        if self._ecdh_curve is not None:
            context.set_ecdh_curve(self._ecdh_curve)
        if self._checking is not None:
            context.sslobject_class, context.sslsocket_class = self._checking
        load_into(context, generation)
        return context


def server_context(source: GenerationSource) -> RotatingContext:
    """A server context: TLS 1.2 or later, client certificates required and verified.

    Args:
        source: Supplies the credentials.

    Returns:
        The context.

    Raises:
        CredentialsError: ``TLSRejected`` when OpenSSL refuses the current credentials.
    """
    context = RotatingContext(ssl.PROTOCOL_TLS_SERVER, source)
    context.minimum_version = MINIMUM_VERSION
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= VERIFY_FLAGS
    load_into(context, source.current())
    return context


def client_context(
    source: GenerationSource, *, server_hostname_check: bool, peer_check: PeerCheck | None = None
) -> RotatingContext:
    """A client context: TLS 1.2 or later, the server verified against ``ca.crt``.

    Args:
        source: Supplies the credentials.
        server_hostname_check: Whether the server's DNS (or IP) SANs must match the
            host name the connection was opened for.
        peer_check: Run on every connection right after its handshake (e.g. to check
            the server's SPIFFE ID).

    Returns:
        The context; it presents the workload's certificate when asked.

    Raises:
        CredentialsError: ``TLSRejected`` when OpenSSL refuses the current credentials.
    """
    context = RotatingContext(ssl.PROTOCOL_TLS_CLIENT, source, peer_check=peer_check)
    context.minimum_version = MINIMUM_VERSION
    context.verify_flags |= VERIFY_FLAGS
    context.check_hostname = server_hostname_check
    load_into(context, source.current())
    return context
