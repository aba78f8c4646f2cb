"""The operator's in-memory view of the cluster, fed by the watches (informers).

Records are compact: parsed specs, the status as last observed, and Secret summaries
without private keys. Reconciliation reads from here instead of the API, so a steady
cluster costs no API calls. The metrics collector reads it at scrape time.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from cryptography import x509

from certmint.api import certificate_types, fields, issuer_types, resources
from certmint.core import secret_format, status
from certmint.pki import ca as pki_ca

#: (namespace, name) of a namespaced object: a Secret, a ServiceAccount.
ObjectKey = tuple[str, str]


class CertificateKey(NamedTuple):
    """The store's key of a Certificate."""

    namespace: str
    name: str


class IssuerKey(NamedTuple):
    """The store's key of an Issuer or ClusterIssuer."""

    kind: str
    #: "" for a ClusterIssuer.
    namespace: str
    name: str


@functools.lru_cache(maxsize=4096)
def issuer_key_for(namespace: str, ref: certificate_types.IssuerRef) -> IssuerKey:
    """The key of the issuer a Certificate in ``namespace`` refers to.

    Cached (bounded): the records of a fleet share the few keys there are.
    """
    return IssuerKey(ref.kind, namespace if ref.kind == "Issuer" else "", ref.name)


@dataclasses.dataclass(slots=True)
class CertificateRecord:
    """A Certificate as last seen, parsed once.

    Attributes:
        namespace: Its namespace.
        name: Its name.
        uid: Its UID.
        generation: ``metadata.generation``.
        spec: The parsed spec, None when it is invalid.
        spec_error: Why the spec is invalid, None when it is valid.
        spec_hash: `secret_format.spec_hash` of the raw spec.
        renew_request: The ``certmint.io/renew-requested-at`` annotation, "" when absent.
        status: The status as last observed (or as last written by us), parsed once.
        issuer_key: The issuer it refers to, None when the spec is too broken to say.
        resource_version: The resourceVersion the record reflects (ours after a status patch).
    """

    namespace: str
    name: str
    uid: str
    generation: int
    spec: certificate_types.CertificateSpec | None
    spec_error: fields.SpecError | None
    spec_hash: str
    renew_request: str
    status: status.CertificateStatus
    issuer_key: IssuerKey | None
    resource_version: str = ""

    @property
    def key(self) -> CertificateKey:
        return CertificateKey(self.namespace, self.name)

    def reference(self) -> dict[str, Any]:
        """The minimal body an Event needs to name this object."""
        return {
            "apiVersion": resources.API_VERSION,
            "kind": "Certificate",
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }


@dataclasses.dataclass(frozen=True, slots=True)
class IssuerRuntime:
    """What the issuer reconciler established about an issuer.

    Attributes:
        ready: Certificates may be signed.
        reason: The Ready condition's reason.
        message: The Ready condition's message.
        signer: The CA that signs now (None for selfSigned or when not ready).
        bundle: The roots workloads must trust, in order.
        bundle_pem: ``bundle`` as PEM, what goes into every ``ca.crt``.
    """

    ready: bool
    reason: str
    message: str
    signer: pki_ca.CertificateAuthority | None = None
    bundle: tuple[x509.Certificate, ...] = ()
    bundle_pem: bytes = b""

    @property
    def bundle_digest(self) -> str:
        return secret_format.bundle_digest(self.bundle_pem)


NOT_RECONCILED = IssuerRuntime(ready=False, reason="Pending", message="not reconciled yet")


@dataclasses.dataclass(slots=True)
class IssuerRecord:
    """An Issuer or ClusterIssuer as last seen, with its runtime state."""

    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    spec: issuer_types.IssuerSpec | None
    spec_error: fields.SpecError | None
    status: Mapping[str, Any]
    rotate_request: str = ""
    rotate_emergency: bool = False
    runtime: IssuerRuntime = NOT_RECONCILED
    failed_attempts: int = 0

    @property
    def key(self) -> IssuerKey:
        return IssuerKey(self.kind, self.namespace, self.name)

    def reference(self) -> dict[str, Any]:
        metadata = {"name": self.name, "uid": self.uid}
        if self.namespace:
            metadata["namespace"] = self.namespace
        return {"apiVersion": resources.API_VERSION, "kind": self.kind, "metadata": metadata}


#: Told of a Certificate stored or changed (its record) or dropped (None).
CertificateSubscriber = Callable[[CertificateKey, CertificateRecord | None], None]


class Store:
    """All records, with the reverse index issuer -> certificates."""

    def __init__(self) -> None:
        self.certificates: dict[CertificateKey, CertificateRecord] = {}
        self.issuers: dict[IssuerKey, IssuerRecord] = {}
        self.secrets: dict[ObjectKey, secret_format.SecretState] = {}
        self.service_accounts: set[ObjectKey] = set()
        #: Certificates blocked on a missing ServiceAccount, by that account.
        self.waiting_for_account: defaultdict[ObjectKey, set[CertificateKey]] = defaultdict(set)
        self._by_issuer: defaultdict[IssuerKey, set[CertificateKey]] = defaultdict(set)
        self._subscribers: list[CertificateSubscriber] = []

    def subscribe(self, subscriber: CertificateSubscriber) -> None:
        """Calls ``subscriber`` with every record stored from now on (and None when dropped).

        Certificates are changed only through `put_certificate`, `set_certificate_status`
        and `drop_certificate`, so a subscriber (the metrics) never misses a change.
        """
        self._subscribers.append(subscriber)
        for key, record in self.certificates.items():
            subscriber(key, record)

    def put_certificate(self, record: CertificateRecord) -> None:
        previous = self.certificates.get(record.key)
        if previous is not None and previous.issuer_key is not None:
            self._by_issuer[previous.issuer_key].discard(record.key)
        self.certificates[record.key] = record
        if record.issuer_key is not None:
            self._by_issuer[record.issuer_key].add(record.key)
        for subscriber in self._subscribers:
            subscriber(record.key, record)

    def set_certificate_status(
        self, record: CertificateRecord, observed: status.CertificateStatus
    ) -> None:
        """Stores the status a patch answered with, in the record the store holds."""
        record.status = observed
        if self.certificates.get(record.key) is record:
            for subscriber in self._subscribers:
                subscriber(record.key, record)

    def drop_certificate(self, key: CertificateKey) -> CertificateRecord | None:
        record = self.certificates.pop(key, None)
        if record is not None and record.issuer_key is not None:
            self._by_issuer[record.issuer_key].discard(key)
        if record is not None:
            for subscriber in self._subscribers:
                subscriber(key, None)
        return record

    def certificates_of(self, issuer_key: IssuerKey) -> Iterator[CertificateKey]:
        yield from tuple(self._by_issuer.get(issuer_key, ()))
