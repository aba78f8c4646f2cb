"""A workload's own credentials, read from a mounted Secret and kept current.

`load` reads the directory once and fails loudly if it is unusable. After that the
`Credentials` object re-checks the files (a few ``stat`` calls) when a new TLS
connection is made, at most once per ``check_interval``, and switches to a new
generation only when it passes `material.check`. A rejected update leaves the
previous generation serving; it is logged (reason and file names, never key
material) and passed to ``on_reload_error``, once per change on disk.
"""

from __future__ import annotations

import datetime
import logging
import os
import pathlib
import ssl
import threading
import time
from collections.abc import Callable

from cryptography import x509

from certmint.pki import extensions, spiffe
from certmint.workload import authz, contexts, errors, files, material, peers

_log = logging.getLogger("certmint.workload")

DEFAULT_CHECK_INTERVAL = datetime.timedelta(seconds=1)

ReloadErrorCallback = Callable[[errors.CredentialsError], None]


def _read(directory: pathlib.Path) -> material.Generation:
    generation = material.check(files.read(directory))
    contexts.check_loadable(generation)
    return generation


class Credentials:
    """The certificate, key and trust anchors a workload uses for mutual TLS.

    Thread-safe. Create it with `load`.
    """

    def __init__(
        self,
        directory: pathlib.Path,
        generation: material.Generation,
        *,
        trust_domain: str | None,
        check_interval: datetime.timedelta,
        on_reload_error: ReloadErrorCallback | None,
        claims_oid: str | None = None,
    ) -> None:
        """Wrap an already checked first generation; use `load` instead.

        Args:
            directory: The mounted Secret directory.
            generation: The generation read by `load`.
            trust_domain: The trust domain peers must belong to, if set explicitly.
            check_interval: The least time between two looks at the files.
            on_reload_error: Called with each rejected update.
            claims_oid: The claims OID peers' certificates use, if not certmint's.
        """
        self._directory = directory
        self._generation = generation
        self._trust_domain = trust_domain
        self._claims_oid = claims_oid
        self._check_seconds = check_interval.total_seconds()
        self._on_reload_error = on_reload_error
        self._lock = threading.Lock()
        self._next_check = time.monotonic() + self._check_seconds
        self._rejected: files.Signature | None = None
        self._last_error: errors.CredentialsError | None = None

    def __repr__(self) -> str:
        generation = self._generation
        return (
            f"Credentials(directory={str(self._directory)!r}, identity={generation.identity!r}, "
            f"serial={generation.serial_number:x}, not_after={generation.not_after.isoformat()})"
        )

    @property
    def directory(self) -> pathlib.Path:
        """The mounted Secret directory."""
        return self._directory

    @property
    def generation(self) -> material.Generation:
        """The generation in use now (without looking at the files)."""
        return self._generation

    @property
    def certificate(self) -> x509.Certificate:
        """The workload's own leaf certificate, as in use now."""
        return self._generation.certificate

    @property
    def identity(self) -> str | None:
        """The workload's own SPIFFE ID, or ``None`` when its certificate has none."""
        return self._generation.identity

    @property
    def trust_domain(self) -> str | None:
        """The trust domain peers must belong to: the one given to `load`, else the
        workload's own, else ``None`` (any)."""
        if self._trust_domain is not None:
            return self._trust_domain
        own = self._generation.identity
        return None if own is None else spiffe.parse_spiffe_id(own).trust_domain

    @property
    def claims_oid(self) -> str | None:
        """The claims OID given to `load` (``None``: certmint's current and legacy OIDs)."""
        return self._claims_oid

    @property
    def last_error(self) -> errors.CredentialsError | None:
        """Why the latest update on disk was rejected; ``None`` once one is accepted."""
        return self._last_error

    def current(self) -> material.Generation:
        """The generation for a new connection, looking at the files if it is time.

        Returns:
            The newest accepted generation.
        """
        if time.monotonic() >= self._next_check:
            self.reload_if_changed()
        return self._generation

    def reload_if_changed(self, *, force: bool = False) -> bool:
        """Look at the files now and switch to them if they changed and pass the checks.

        Args:
            force: Re-read even if the directory looks unchanged.

        Returns:
            Whether a new generation was accepted.
        """
        with self._lock:
            self._next_check = time.monotonic() + self._check_seconds
            seen = files.signature(self._directory)
            if not force and seen in (self._generation.signature, self._rejected):
                return False
            try:
                generation = _read(self._directory)
            except errors.CredentialsError as err:
                rejected = self._reject(seen, err)
            else:
                if not force and generation.signature == self._generation.signature:
                    return False
                self._accept(generation)
                return True
        # Outside the lock: the callback may use this object.
        if rejected is not None and self._on_reload_error is not None:
            self._on_reload_error(rejected)
        return False

    def _reject(
        self, seen: files.Signature, err: errors.CredentialsError
    ) -> errors.CredentialsError | None:
        first_time = seen != self._rejected
        self._rejected = seen
        self._last_error = err
        if not first_time:
            return None
        _log.warning(
            "not loading the changed credentials in %s, keeping serial %x: %s",
            self._directory,
            self._generation.serial_number,
            err,
        )
        return err

    def _accept(self, generation: material.Generation) -> None:
        previous = self._generation
        self._generation = generation
        self._rejected = None
        self._last_error = None
        if generation.serial_number != previous.serial_number:
            _log.info(
                "loaded new credentials from %s: %s serial %x, expires %s",
                self._directory,
                generation.identity,
                generation.serial_number,
                generation.not_after.isoformat(),
            )

    def server_context(self) -> ssl.SSLContext:
        """A server context that requires and verifies client certificates.

        TLS 1.2 or later; the client's chain must lead to an anchor in ``ca.crt``.
        Each new connection uses the newest credentials (see `contexts.RotatingContext`).
        Authorize the client after the handshake with `peer` and an `Authorizer`.

        Returns:
            The context.

        Raises:
            CredentialsError: ``TLSRejected`` when OpenSSL refuses the credentials.
        """
        return contexts.server_context(self)

    def client_context(
        self,
        *,
        server_identity: str | None = None,
        server_hostname_check: bool | None = None,
    ) -> ssl.SSLContext:
        """A client context that presents the workload's certificate and verifies the server.

        The server's chain must always lead to an anchor in ``ca.crt``. On top of that,
        the server is identified one of two ways:

        * by host name (the default, as HTTPS clients do): its DNS or IP SANs must
          match the host you connect to;
        * by SPIFFE ID, with ``server_identity``: a pattern (as in `allow`) the
          server's ID must match, checked during the handshake, before any request is
          sent. SPIFFE workloads may have no DNS SANs, so the host name is then not
          checked unless ``server_hostname_check=True``.

        ``server_hostname_check=False`` without ``server_identity`` accepts any
        workload the CA issued to: only do that if you check `peer` yourself.
        Each new connection uses the newest credentials.

        Args:
            server_identity: SPIFFE ID pattern the server must match, e.g.
                ``"spiffe://cluster.local/ns/payments/sa/api"``.
            server_hostname_check: Whether to match the server's DNS/IP SANs; default:
                only when ``server_identity`` is not given.

        Returns:
            The context.

        Raises:
            CredentialsError: ``TLSRejected`` when OpenSSL refuses the credentials.
            ValueError: ``server_identity`` is not a valid pattern.
        """
        check_hostname = (
            server_identity is None if server_hostname_check is None else (server_hostname_check)
        )
        peer_check = None
        if server_identity is not None:
            peer_check = self._server_check(authz.IdentityPattern.parse(server_identity))
        return contexts.client_context(
            self, server_hostname_check=check_hostname, peer_check=peer_check
        )

    def _server_check(self, pattern: authz.IdentityPattern) -> contexts.PeerCheck:
        def check(connection: ssl.SSLObject | ssl.SSLSocket) -> None:
            try:
                server = self.peer(connection)
            except errors.PeerError as err:
                raise contexts.verification_error(str(err)) from None
            if not pattern.matches(server.identity):
                raise contexts.verification_error(f"the server is {server.identity}, not {pattern}")

        return check

    def peer(self, connection: ssl.SSLSocket | ssl.SSLObject) -> peers.Peer:
        """Identify a connection's peer, requiring it to be in `trust_domain`.

        Args:
            connection: The TLS socket or ``ssl_object``, after the handshake.

        Returns:
            The peer.

        Raises:
            PeerError: See `peers.peer`.
        """
        return peers.peer(connection, trust_domain=self.trust_domain, claims_oid=self._claims_oid)


def load(
    directory: str | os.PathLike[str],
    *,
    trust_domain: str | None = None,
    check_interval: datetime.timedelta = DEFAULT_CHECK_INTERVAL,
    on_reload_error: ReloadErrorCallback | None = None,
    claims_oid: str | None = None,
) -> Credentials:
    """Read ``tls.crt``, ``tls.key`` and ``ca.crt`` from a mounted Secret directory.

    The three files are read from the one directory ``..data`` points to, so a kubelet
    update racing with the read cannot mix two generations.

    Args:
        directory: Where the Secret is mounted, e.g. ``/var/run/secrets/certmint``.
        trust_domain: The trust domain peers must belong to. Default: the workload's
            own (from its SPIFFE ID).
        check_interval: The least time between two looks at the files; a look is a
            few ``stat`` calls made when a connection is opened.
        on_reload_error: Called (on the connecting thread) with each rejected update.
        claims_oid: Your organization's claims OID, when the operator runs with
            ``--claims-oid``; it replaces certmint's for reading peers' claims. Default:
            certmint's current OID and its legacy one.

    Returns:
        The credentials.

    Raises:
        CredentialsError: The files are missing or unusable (see `material.check`), or
            OpenSSL refuses them (``TLSRejected``).
        PKIError: ``trust_domain`` is not a valid trust domain name, or ``claims_oid``
            not an OID certmint accepts.
    """
    if trust_domain is not None:
        spiffe.validate_trust_domain(trust_domain, "trust_domain")
    extensions.claims_oids(claims_oid, "claims_oid")
    path = pathlib.Path(directory)
    generation = _read(path)
    return Credentials(
        path,
        generation,
        trust_domain=trust_domain,
        check_interval=check_interval,
        on_reload_error=on_reload_error,
        claims_oid=claims_oid,
    )
