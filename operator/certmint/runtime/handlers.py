"""Thin handlers: parse what the watches deliver into the store, queue the keys.

Certificates, Secrets and ServiceAccounts (the kinds that grow with the cluster) come
from an `informer.Informer`; Issuers and ClusterIssuers from kopf
(`certmint.runtime.kopf_issuers`), into the same `issuer_events` callbacks. Nothing is
reconciled before every source has handed over its initial listing
(`WatchHealth.wait_synced`): a restart never mistakes a Secret it has not seen yet for a
missing one. Nothing here writes to the objects it watches: no finalizers, no progress
annotations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from certmint.api import model
from certmint.core import secret_format, state
from certmint.k8s import informer
from certmint.runtime import authority
from certmint.runtime import controller as controller_module

GROUP, VERSION = "certmint.io", "v1alpha1"
API_PREFIX = f"/apis/{GROUP}/{VERSION}"
CERTIFICATES = informer.Kind(API_PREFIX, "certificates")
#: Only Secrets certmint issued, filtered by the API server.
SECRETS = informer.Kind("/api/v1", "secrets", secret_format.LABEL_CERTIFICATE_NAME)
SERVICE_ACCOUNTS = informer.Kind("/api/v1", "serviceaccounts")

log = logging.getLogger("certmint.runtime.handlers")


class WatchHealth:
    """When each watched kind last delivered an event, and whether all are listed.

    Every source of the store adds its ``listed`` gate with `track`; the store is synced
    once each has handed over its initial listing completely.
    """

    def __init__(self) -> None:
        self.last_event: dict[str, float] = {}
        self._gates: list[asyncio.Event] = []

    def track(self, listed: asyncio.Event) -> asyncio.Event:
        self._gates.append(listed)
        return listed

    @property
    def synced(self) -> bool:
        """Whether the initial listings of all watched kinds are in the store."""
        return all(gate.is_set() for gate in self._gates)

    async def wait_synced(self) -> None:
        for gate in self._gates:
            await gate.wait()

    def seen(self, resource: str) -> None:
        self.last_event[resource] = time.monotonic()


def certificate_record(body: Mapping[str, Any]) -> state.CertificateRecord:
    """Parses a Certificate body once; an invalid spec is kept as its error."""
    metadata = body.get("metadata") or {}
    namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
    spec: model.CertificateSpec | None = None
    error: model.SpecError | None = None
    try:
        spec = model.CertificateSpec.from_body(body)
    except model.SpecError as err:
        error = err
    annotations = metadata.get("annotations") or {}
    return state.CertificateRecord(
        namespace=namespace,
        name=name,
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        spec=spec,
        spec_error=error,
        spec_hash=secret_format.spec_hash(body.get("spec") or {}),
        renew_request=str(annotations.get(secret_format.ANNOTATION_RENEW_REQUEST, "")),
        status=dict(body.get("status") or {}),
        issuer_key=state.issuer_key_for(namespace, spec.issuer_ref) if spec else None,
        resource_version=str(metadata.get("resourceVersion", "")),
    )


def issuer_record(
    body: Mapping[str, Any], previous: state.IssuerRecord | None
) -> state.IssuerRecord:
    """Parses an Issuer or ClusterIssuer body, keeping the runtime state already known."""
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    spec: model.IssuerSpec | None = None
    error: model.SpecError | None = None
    try:
        spec = model.IssuerSpec.from_body(body)
    except model.SpecError as err:
        error = err
    record = state.IssuerRecord(
        kind=str(body.get("kind", "")),
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name", "")),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        spec=spec,
        spec_error=error,
        status=dict(body.get("status") or {}),
        rotate_request=str(annotations.get(authority.ANNOTATION_ROTATE_REQUEST, "")),
        rotate_emergency=annotations.get(authority.ANNOTATION_ROTATE_EMERGENCY) == "true",
    )
    if previous is not None:
        # The runtime (loaded CA, bundle) stays until the next reconciliation replaces it.
        record.runtime = previous.runtime
        record.failed_attempts = previous.failed_attempts
    return record


def issuer_events(ctl: controller_module.Controller, kind: str) -> informer.EventHandler:
    """Issuers (or ClusterIssuers) into the store and the issuer queue.

    A deleted issuer queues its Certificates: they turn ``IssuerNotFound``. ``kind`` is
    set on every body, because a listing's DELETED carries only the name.
    """
    store = ctl.store

    def handle(type_: str, body: Mapping[str, Any]) -> None:
        body = {**body, "kind": kind}
        key = _issuer_key(body)
        if type_ == "DELETED":
            store.issuers.pop(key, None)
            ctl.issuers.forget(key)
            for certificate_key in store.certificates_of(key):
                ctl.certificates.add(certificate_key)
            return
        store.issuers[key] = issuer_record(body, store.issuers.get(key))
        ctl.issuers.add(key)

    return handle


def certificate_events(
    ctl: controller_module.Controller, is_leader: Callable[[], bool]
) -> informer.EventHandler:
    """Certificates into the store and the work queue; a deleted one takes its Secret along.

    The echo of certmint's own status patch carries the resourceVersion the record was
    given from the patch's answer: nothing changed, nothing to do.
    """
    store = ctl.store

    def handle(type_: str, body: Mapping[str, Any]) -> None:
        key = informer.object_key(body)
        if type_ == "DELETED":
            record = store.drop_certificate(key)
            ctl.certificates.forget(key)
            if record is not None and is_leader():
                ctl.in_background(ctl.delete_secret_of(record), f"deleting the Secret of {key}")
            return
        version = (body.get("metadata") or {}).get("resourceVersion")
        known = store.certificates.get(key)
        if known is not None and known.resource_version == version:
            return
        store.put_certificate(certificate_record(body))
        ctl.certificates.add(key)

    return handle


def secret_events(ctl: controller_module.Controller) -> informer.EventHandler:
    """Secret summaries into the store; a change queues the Certificate that owns it.

    Only Secrets certmint issued arrive (a server-side label selector). The echo of a
    Secret certmint just wrote carries the resourceVersion already stored: nothing to do.
    """
    store = ctl.store

    def handle(type_: str, body: Mapping[str, Any]) -> None:
        key = informer.object_key(body)
        metadata = body.get("metadata") or {}
        if type_ == "DELETED":
            known = store.secrets.pop(key, None)
            owner = known.owner if known else None
            owner = owner or (metadata.get("labels") or {}).get(
                secret_format.LABEL_CERTIFICATE_NAME
            )
        else:
            known = store.secrets.get(key)
            if known is not None and known.resource_version == metadata.get("resourceVersion"):
                return
            summary = secret_format.read_secret(body)
            store.secrets[key] = summary
            owner = summary.owner
        if owner:
            ctl.certificates.add((key[0], owner))

    return handle


def service_account_events(ctl: controller_module.Controller) -> informer.EventHandler:
    """Which ServiceAccounts exist; a new one unblocks the Certificates waiting for it."""
    store = ctl.store

    def handle(type_: str, body: Mapping[str, Any]) -> None:
        key = informer.object_key(body)
        if type_ == "DELETED":
            store.service_accounts.discard(key)
        else:
            store.service_accounts.add(key)
        for certificate_key in store.waiting_for_account.pop(key, ()):
            ctl.certificates.add(certificate_key)

    return handle


def _issuer_key(body: Mapping[str, Any]) -> state.IssuerKey:
    metadata = body.get("metadata") or {}
    return (
        str(body.get("kind", "")),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name", "")),
    )
