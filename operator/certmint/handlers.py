"""Thin kopf handlers: parse what the watches deliver into the store, queue the keys.

Only ``@kopf.index`` and ``@kopf.on.event`` handlers are used. kopf runs every index
handler over the initial listings of all watched kinds before it delivers any event,
so the store is complete before the first reconciliation: a restart never mistakes a
Secret it has not seen yet for a missing one. kopf itself writes nothing to our
objects: no finalizers, no progress annotations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf
from kubernetes import client

from certmint import authority, model, secret_format, state
from certmint import controller as controller_module

GROUP, VERSION = "certmint.io", "v1alpha1"


class WatchHealth:
    """When each watched kind last delivered an event (for metrics and /healthz)."""

    def __init__(self) -> None:
        self.last_event: dict[str, float] = {}
        self._synced = asyncio.Event()

    @property
    def synced(self) -> bool:
        """Whether kopf has delivered the initial listings of all watched kinds."""
        return self._synced.is_set()

    @synced.setter
    def synced(self, value: bool) -> None:
        if value:
            self._synced.set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

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


def _key(body: Mapping[str, Any]) -> state.ObjectKey:
    metadata = body.get("metadata") or {}
    return (str(metadata.get("namespace", "")), str(metadata.get("name", "")))


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials from the same client settings the rest of certmint uses."""
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or ("Bearer" if token else None),
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def build_registry(
    ctl: controller_module.Controller,
    health: WatchHealth,
    is_leader: Callable[[], bool],
    configuration: client.Configuration,
    *,
    cluster_issuers: bool = True,
) -> kopf.OperatorRegistry:
    """Registers the handlers for one operator instance.

    ``cluster_issuers`` is False when the operator watches chosen namespaces only: its
    namespaced Roles cannot list a cluster-scoped kind.
    """
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(configuration)

    _certificates(registry, ctl, health, is_leader)
    _issuers(
        registry, ctl, health, ("issuers", "clusterissuers") if cluster_issuers else ("issuers",)
    )
    _secrets(registry, ctl, health)
    _service_accounts(registry, ctl, health)
    return registry


def _certificates(
    registry: kopf.OperatorRegistry,
    ctl: controller_module.Controller,
    health: WatchHealth,
    is_leader: Callable[[], bool],
) -> None:
    store = ctl.store

    @kopf.index(GROUP, VERSION, "certificates", registry=registry)
    async def index_certificate(body: kopf.Body, **_: Any) -> None:
        health.seen("certificates")
        store.put_certificate(certificate_record(body))

    @kopf.on.event(GROUP, VERSION, "certificates", registry=registry)
    async def on_certificate(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        health.synced = True
        key = _key(body)
        if event.get("type") == "DELETED":
            health.seen("certificates")
            record = store.drop_certificate(key)
            ctl.certificates.forget(key)
            if record is not None and is_leader():
                await ctl.delete_secret_of(record)
            return
        ctl.certificates.add(key)


def _issuers(
    registry: kopf.OperatorRegistry,
    ctl: controller_module.Controller,
    health: WatchHealth,
    plurals: tuple[str, ...],
) -> None:
    store = ctl.store
    for plural in plurals:

        @kopf.index(GROUP, VERSION, plural, id=f"index_{plural}", registry=registry)
        async def index_issuer(body: kopf.Body, plural: str = plural, **_: Any) -> None:
            health.seen(plural)
            record = issuer_record(body, store.issuers.get(_issuer_key(body)))
            store.issuers[record.key] = record

        @kopf.on.event(GROUP, VERSION, plural, id=f"on_{plural}", registry=registry)
        async def on_issuer(
            event: Mapping[str, Any], body: kopf.Body, plural: str = plural, **_: Any
        ) -> None:
            health.synced = True
            key = _issuer_key(body)
            if event.get("type") == "DELETED":
                health.seen(plural)
                store.issuers.pop(key, None)
                ctl.issuers.forget(key)
                for certificate_key in store.certificates_of(key):
                    ctl.certificates.add(certificate_key)
                return
            ctl.issuers.add(key)


def _secrets(
    registry: kopf.OperatorRegistry, ctl: controller_module.Controller, health: WatchHealth
) -> None:
    """Only Secrets certmint issued are delivered (a server-side label selector)."""
    store = ctl.store

    @kopf.index("v1", "secrets", registry=registry)
    async def index_secret(body: kopf.Body, **_: Any) -> None:
        health.seen("secrets")
        summary = secret_format.read_secret(body)
        store.secrets[(summary.namespace, summary.name)] = summary

    @kopf.on.event("v1", "secrets", registry=registry)
    async def on_secret(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        health.synced = True
        key = _key(body)
        owner = store.certificate_for_secret(*key)
        if event.get("type") == "DELETED":
            health.seen("secrets")
            store.secrets.pop(key, None)
        if owner is not None:
            ctl.certificates.add(owner)
        elif event.get("type") == "DELETED":
            labels = (body.get("metadata") or {}).get("labels") or {}
            name = labels.get(secret_format.LABEL_CERTIFICATE_NAME)
            if name:
                ctl.certificates.add((key[0], name))


def _service_accounts(
    registry: kopf.OperatorRegistry, ctl: controller_module.Controller, health: WatchHealth
) -> None:
    store = ctl.store

    @kopf.index("v1", "serviceaccounts", registry=registry)
    async def index_service_account(body: kopf.Body, **_: Any) -> None:
        health.seen("serviceaccounts")
        store.service_accounts.add(_key(body))

    @kopf.on.event("v1", "serviceaccounts", registry=registry)
    async def on_service_account(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        health.synced = True
        key = _key(body)
        if event.get("type") == "DELETED":
            health.seen("serviceaccounts")
            store.service_accounts.discard(key)
        for certificate_key in store.waiting_for_account.pop(key, ()):
            ctl.certificates.add(certificate_key)


def _issuer_key(body: Mapping[str, Any]) -> state.IssuerKey:
    metadata = body.get("metadata") or {}
    return (
        str(body.get("kind", "")),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name", "")),
    )
