"""Issuer reconciliation: readiness, CA lifecycle, trust bundle status and distribution.

A mixin of `controller.Controller`, kept apart so each half stays readable: the
Certificate side lives in controller.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from certmint import (
    distribution,
    kube,
    metrics,
    rotation,
    scheduler,
    secret_format,
    state,
    status,
)
from certmint.authority import Authority, Outcome
from certmint.pki import renewal

if TYPE_CHECKING:
    from certmint.controller import Settings

log = logging.getLogger("certmint.controller")


def issuer_log_fields(record: state.IssuerRecord, reason: str) -> dict[str, Any]:
    return {
        "namespace": record.namespace,
        "issuer": f"{record.kind}/{record.name}",
        "reason": reason,
    }


class IssuerReconciliation:
    """Reconciles Issuers and ClusterIssuers; wakes their Certificates when they change."""

    # Provided by the Controller.
    api: kube.Kube
    store: state.Store
    settings: Settings
    clock: Callable[[], datetime]
    certificates: scheduler.WorkQueue[state.ObjectKey]
    issuers: scheduler.WorkQueue[state.IssuerKey]
    skip_backoff: set[state.ObjectKey]
    authority: Authority
    _published: dict[state.IssuerKey, dict[str, tuple[str, str]]]
    _cluster_bundles: dict[state.IssuerKey, str]

    def post_event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        raise NotImplementedError

    async def reconcile_issuer(self, key: state.IssuerKey) -> None:
        record = self.store.issuers.get(key)
        if record is None:
            self.issuers.forget(key)
            return
        now = self.clock()
        try:
            outcome = await self.authority.reconcile(record, now)
        except kube.KubeError as err:
            outcome = Outcome(
                state.IssuerRuntime(False, "CAUnavailable", f"reading the CA failed: {err}")
            )
        previous = record.runtime
        record.runtime = outcome.runtime
        if previous is state.NOT_RECONCILED:
            metrics.initialize_issuer_series(record.name, record.kind)
        await self._write_issuer_status(record, outcome, now)
        for type_, reason, message in outcome.events:
            self.post_event(record.reference(), type_, reason, message)
            log.info(message, extra=issuer_log_fields(record, reason))
        runtime = outcome.runtime
        if (previous.ready, previous.reason, previous.message) != (
            runtime.ready,
            runtime.reason,
            runtime.message,
        ):
            type_ = "Normal" if runtime.ready else "Warning"
            self.post_event(record.reference(), type_, runtime.reason, runtime.message)
            level = logging.INFO if runtime.ready else logging.WARNING
            log.log(level, runtime.message, extra=issuer_log_fields(record, runtime.reason))
        self._wake_certificates(record, previous, runtime)
        if runtime.ready:
            try:
                await self._distribute(record, outcome)
            except kube.KubeError as err:
                log.warning(
                    "trust distribution failed: %s", err,
                    extra=issuer_log_fields(record, "TrustDistributionFailed"),
                )  # fmt: skip
        self.issuers.schedule(key, self._next_issuer_check(record, outcome, now), limited=False)

    def _next_issuer_check(
        self, record: state.IssuerRecord, outcome: Outcome, now: datetime
    ) -> datetime:
        if not outcome.runtime.ready:
            record.failed_attempts += 1
            return now + renewal.backoff_delay(
                record.failed_attempts, base=self.settings.retry_base, cap=self.settings.retry_cap
            )
        record.failed_attempts = 0
        moments = [now + self.settings.issuer_resync]
        if outcome.rotation is not None:
            moments.append(status.parse_timestamp(outcome.rotation["activateAfter"]) or now)
        moments.extend(root.retain_until for root in outcome.roots if root.retain_until)
        return max(now, min(moments))

    def _wake_certificates(
        self,
        record: state.IssuerRecord,
        previous: state.IssuerRuntime,
        runtime: state.IssuerRuntime,
    ) -> None:
        signer_before = previous.signer.fingerprint_sha256 if previous.signer else None
        signer_now = runtime.signer.fingerprint_sha256 if runtime.signer else None
        first_look = previous is state.NOT_RECONCILED
        became_ready = runtime.ready and not previous.ready
        rotated = previous.ready and runtime.ready and signer_before != signer_now
        bundle_changed = previous.ready and previous.bundle_digest != runtime.bundle_digest
        for certificate_key in self.store.certificates_of(record.key):
            if first_look or became_ready:
                self.skip_backoff.add(certificate_key)
                self.certificates.add(certificate_key)
            elif rotated or bundle_changed:
                # Re-issue every leaf (or refresh every ca.crt), spread out by the rate bound.
                self.certificates.schedule(certificate_key, self.clock())

    async def _write_issuer_status(
        self, record: state.IssuerRecord, outcome: Outcome, now: datetime
    ) -> None:
        runtime = outcome.runtime
        signer = runtime.signer
        desired: dict[str, Any] = {
            "conditions": [
                status.condition(
                    record.status.get("conditions"),
                    type_="Ready",
                    status="True" if runtime.ready else "False",
                    reason=runtime.reason,
                    message=runtime.message,
                    generation=record.generation,
                    now=now,
                )
            ],
            "ca": None,
            "rotation": outcome.rotation,
        }
        if signer is not None:
            desired["ca"] = {
                "subject": signer.subject,
                "notAfter": status.timestamp(signer.not_after),
                "fingerprintSHA256": signer.fingerprint_sha256,
            }
        if runtime.ready:
            # While not ready the last known bundle is kept: it records the roots still trusted.
            desired["trustBundle"] = rotation.to_status(outcome.roots) or None
        if status.unchanged(record.status, desired):
            return
        try:
            result = await self.api.patch_status(
                record.kind, record.namespace or None, record.name, desired
            )
        except kube.NotFoundError:
            return
        record.status = result.get("status") or {}

    async def _distribute(self, record: state.IssuerRecord, outcome: Outcome) -> None:
        """Keeps the trust ConfigMaps (and the ClusterTrustBundle) equal to the bundle."""
        spec = record.spec
        if spec is None:
            return
        runtime = outcome.runtime
        digest = runtime.bundle_digest
        published = self._published.get(record.key)
        if published is None:
            existing = await self.api.list_config_maps(
                distribution.label_selector(record.kind, record.name),
                namespace=record.namespace,  # an Issuer publishes in its own namespace only
            )
            published = {
                item["metadata"]["namespace"]: (
                    item["metadata"]["name"],
                    secret_format.bundle_digest(
                        (item.get("data") or {}).get(distribution.KEY_PEM, "").encode()
                    ),
                )
                for item in existing
            }
            self._published[record.key] = published
        trust = spec.trust_distribution
        wanted: set[str] = set()
        if trust is not None and runtime.bundle_pem:
            # Namespaces are listed at each issuer resync rather than watched: a new
            # namespace gets its ConfigMap within one resync interval.
            namespaces = await self.api.list_namespaces() if not record.namespace else {}
            wanted = distribution.target_namespaces(trust, record.namespace, namespaces)
        name = trust.config_map_name if trust else ""
        for namespace in sorted(wanted):
            if published.get(namespace) == (name, digest):
                continue
            body = distribution.config_map_body(
                namespace=namespace,
                name=name,
                kind=record.kind,
                issuer_name=record.name,
                roots=runtime.bundle,
                bundle_pem=runtime.bundle_pem,
                sequence=int(self.clock().timestamp()),
                refresh_hint=min(spec.policy.max_duration / 10, timedelta(minutes=5)),
            )
            try:
                await self.api.apply_config_map(namespace, body)
            except kube.KubeError as err:
                if err.status in (403, 404):  # a namespace being deleted refuses new objects
                    continue
                raise
            stale = published.get(namespace)
            if stale is not None and stale[0] != name:
                await self.api.delete_config_map(namespace, stale[0])
            published[namespace] = (name, digest)
        for namespace in sorted(set(published) - wanted):
            await self.api.delete_config_map(namespace, published.pop(namespace)[0])
        publish_cluster_bundle = trust is not None and trust.cluster_trust_bundle
        if publish_cluster_bundle and self._cluster_bundles.get(record.key) != digest:
            await self.api.apply_cluster_trust_bundle(
                distribution.cluster_trust_bundle_body(record.kind, record.name, runtime.bundle_pem)
            )
            self._cluster_bundles[record.key] = digest
