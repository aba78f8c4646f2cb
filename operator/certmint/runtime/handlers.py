"""Thin handlers: parse what the watches deliver into the store, queue the keys.

Certificates, Secrets and ServiceAccounts (the kinds that grow with the cluster) come
from an `informer.Informer`; Issuers and ClusterIssuers from kopf
(`certmint.runtime.kopf_issuers`), into the same `issuer_events` callbacks. Nothing is
reconciled before every source has handed over its initial listing
(`health.WatchHealth.wait_synced`): a restart never mistakes a Secret it has not seen yet for a
missing one. Nothing here writes to the objects it watches: no finalizers, no progress
annotations.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from certmint.api import certificate_types, fields, issuer_types, resources
from certmint.core import secret_format, state, status
from certmint.k8s import informer
from certmint.runtime import certificates, issuers

CERTIFICATES = informer.Kind(resources.API_PREFIX, "certificates")
#: Only Secrets certmint issued, filtered by the API server.
SECRETS = informer.Kind("/api/v1", "secrets", resources.LABEL_CERTIFICATE_NAME)
SERVICE_ACCOUNTS = informer.Kind("/api/v1", "serviceaccounts")

log = logging.getLogger("certmint.handlers")


def certificate_record(body: Mapping[str, Any]) -> state.CertificateRecord:
    """Parses a Certificate body once; an invalid spec is kept as its error."""
    metadata = body.get("metadata") or {}
    # Namespaces repeat across the fleet: one string each, not one per record.
    namespace = sys.intern(str(metadata.get("namespace", "")))
    name = str(metadata.get("name", ""))
    spec: certificate_types.CertificateSpec | None = None
    error: fields.SpecError | None = None
    try:
        spec = certificate_types.CertificateSpec.from_body(body)
    except fields.SpecError as err:
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
        renew_request=str(annotations.get(resources.ANNOTATION_RENEW_REQUEST, "")),
        status=status.CertificateStatus.parse(body.get("status")),
        issuer_key=state.issuer_key_for(namespace, spec.issuer_ref) if spec else None,
        resource_version=str(metadata.get("resourceVersion", "")),
    )


def issuer_record(
    body: Mapping[str, Any], previous: state.IssuerRecord | None
) -> state.IssuerRecord:
    """Parses an Issuer or ClusterIssuer body, keeping the runtime state already known."""
    metadata = body.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    spec: issuer_types.IssuerSpec | None = None
    error: fields.SpecError | None = None
    try:
        spec = issuer_types.IssuerSpec.from_body(body)
    except fields.SpecError as err:
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
        rotate_request=str(annotations.get(resources.ANNOTATION_ROTATE_REQUEST, "")),
        rotate_emergency=annotations.get(resources.ANNOTATION_ROTATE_EMERGENCY) == "true",
    )
    if previous is not None:
        # The runtime (loaded CA, bundle) stays until the next reconciliation replaces it.
        record.runtime = previous.runtime
        record.failed_attempts = previous.failed_attempts
    return record


def issuer_events(
    reconciler: issuers.IssuerReconciler,
    certificate_queue: certificates.CertificateQueue,
    kind: str,
) -> informer.EventHandler:
    """Issuers (or ClusterIssuers) into the store and the issuer queue.

    A deleted issuer queues its Certificates: they turn ``IssuerNotFound``. ``kind`` is
    set on every body, because a listing's DELETED carries only the name.
    """
    store = reconciler.store

    def handle(type_: str, body: Mapping[str, Any]) -> None:
        body = {**body, "kind": kind}
        key = _issuer_key(body)
        if type_ == "DELETED":
            store.issuers.pop(key, None)
            reconciler.queue.forget(key)
            for certificate_key in store.certificates_of(key):
                certificate_queue.add(certificate_key)
            return
        store.issuers[key] = issuer_record(body, store.issuers.get(key))
        reconciler.queue.add(key)

    return handle


def certificate_events(
    reconciler: certificates.CertificateReconciler, is_leader: Callable[[], bool]
) -> informer.EventHandler:
    """Certificates into the store and the work queue; a deleted one takes its Secret along.

    The echo of certmint's own status patch carries the resourceVersion the record was
    given from the patch's answer: nothing changed, nothing to do.
    """
    store, queue = reconciler.store, reconciler.queue

    def handle(type_: str, body: Mapping[str, Any]) -> None:
        key = state.CertificateKey(*informer.object_key(body))
        if type_ == "DELETED":
            record = store.drop_certificate(key)
            queue.forget(key)
            if record is not None and is_leader():
                reconciler.sink.in_background(
                    reconciler.delete_secret_of(record), f"deleting the Secret of {key}"
                )
            return
        version = (body.get("metadata") or {}).get("resourceVersion")
        known = store.certificates.get(key)
        if known is not None and known.resource_version == version:
            return
        store.put_certificate(certificate_record(body))
        queue.add(key)

    return handle


def secret_events(
    store: state.Store, certificate_queue: certificates.CertificateQueue
) -> informer.EventHandler:
    """Secret summaries into the store; a change queues the Certificate that owns it.

    Only Secrets certmint issued arrive (a server-side label selector). The echo of a
    Secret certmint just wrote carries the resourceVersion already stored: nothing to do.
    """

    def handle(type_: str, body: Mapping[str, Any]) -> None:
        key = informer.object_key(body)
        metadata = body.get("metadata") or {}
        if type_ == "DELETED":
            known = store.secrets.pop(key, None)
            owner = known.owner if known else None
            owner = owner or (metadata.get("labels") or {}).get(resources.LABEL_CERTIFICATE_NAME)
        else:
            known = store.secrets.get(key)
            if known is not None and known.resource_version == metadata.get("resourceVersion"):
                return
            summary = secret_format.read_secret(body)
            store.secrets[key] = summary
            owner = summary.owner
        if owner:
            certificate_queue.add(state.CertificateKey(key[0], owner))

    return handle


def service_account_events(
    store: state.Store, certificate_queue: certificates.CertificateQueue
) -> informer.EventHandler:
    """Which ServiceAccounts exist; a new one unblocks the Certificates waiting for it."""

    def handle(type_: str, body: Mapping[str, Any]) -> None:
        key = informer.object_key(body)
        if type_ == "DELETED":
            store.service_accounts.discard(key)
        else:
            store.service_accounts.add(key)
        for certificate_key in store.waiting_for_account.pop(key, ()):
            certificate_queue.add(certificate_key)

    return handle


def _issuer_key(body: Mapping[str, Any]) -> state.IssuerKey:
    metadata = body.get("metadata") or {}
    return state.IssuerKey(
        str(body.get("kind", "")),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name", "")),
    )
