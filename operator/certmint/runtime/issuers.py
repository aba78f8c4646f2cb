"""The issuer reconciler: readiness, CA lifecycle, trust bundle status and distribution.

It wakes the Certificates of an issuer that changed through the `CertificateWaker` it is
given (the certificate reconciler), and posts Events through the shared sink.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from certmint.core import distribution, issuer_pacing, rotation, secret_format, state, status
from certmint.k8s import kube
from certmint.runtime import events, metrics, scheduler, settings
from certmint.runtime.authority import Authority, Outcome

log = logging.getLogger("certmint.controller")  # the reconcilers share it: see events.py

#: Issuers reconciled concurrently (a new leader re-reads every CA before it issues).
ISSUER_WORKERS = 4

#: A trust ConfigMap certmint wrote: (name, bundle digest, uid).
Published = tuple[str, str, str]
#: What certmint remembers having published is checked against a fresh listing every
#: this many issuer resyncs, so a trust ConfigMap someone deleted comes back.
RELIST_EVERY_RESYNCS = 10


def issuer_log_fields(record: state.IssuerRecord, reason: str) -> dict[str, Any]:
    return {
        "namespace": record.namespace,
        "issuer": f"{record.kind}/{record.name}",
        "reason": reason,
    }


class CertificateWaker(Protocol):
    """How an issuer's change reaches its Certificates."""

    def wake_after_recovery(self, key: state.CertificateKey) -> None: ...

    def reissue_soon(self, key: state.CertificateKey) -> None: ...


class IssuerReconciler:
    """Reconciles Issuers and ClusterIssuers; wakes their Certificates when they change."""

    def __init__(
        self,
        api: kube.Kube,
        store: state.Store,
        config: settings.Settings,
        sink: events.EventSink,
        *,
        clock: Callable[[], datetime],
        certificates: CertificateWaker,
    ) -> None:
        self.api = api
        self.store = store
        self.settings = config
        self.sink = sink
        self.clock = clock
        self.certificates = certificates
        self.queue: scheduler.WorkQueue[state.IssuerKey] = scheduler.WorkQueue(rate=10.0, burst=10)
        self.authority = Authority(api, config.operator_namespace)
        #: Trust ConfigMaps written, per issuer: namespace -> (name, bundle digest, uid).
        self._published: dict[state.IssuerKey, dict[str, Published]] = {}
        #: The bundle digest in each issuer's ClusterTrustBundle ("" once none is wanted).
        self._cluster_bundles: dict[state.IssuerKey, str] = {}
        #: Each issuer's trust distribution conflicts, as last found.
        self._trust_conflicts: dict[state.IssuerKey, tuple[str, ...]] = {}
        #: When each issuer's trust ConfigMaps were last listed.
        self._published_at: dict[state.IssuerKey, datetime] = {}

    async def reconcile(self, key: state.IssuerKey) -> None:
        record = self.store.issuers.get(key)
        if record is None:
            self.queue.forget(key)
            return
        now = self.clock()
        manage = record.kind != "ClusterIssuer" or self.settings.manage_cluster_issuers
        try:
            outcome = await self.authority.reconcile(record, now, manage=manage)
        except kube.KubeError as err:
            if kube.is_transient(err):
                raise  # the API, not the CA: keep what is known, the worker retries soon
            outcome = Outcome(
                state.IssuerRuntime(False, "CAUnavailable", f"reading the CA failed: {err}")
            )
        previous = record.runtime
        record.runtime = outcome.runtime
        if previous is state.NOT_RECONCILED:
            metrics.initialize_issuer_series(record.name, record.kind)
        if not manage:
            # Another shard manages this ClusterIssuer: sign with its CA, write nothing of it.
            self._wake_certificates(record, previous)
            self.queue.schedule(key, self._next_issuer_check(record, outcome, now), limited=False)
            return
        await self._write_issuer_status(record, outcome, now)
        for type_, reason, message in outcome.events:
            self.sink.post(record.reference(), type_, reason, message)
            log.info(message, extra=issuer_log_fields(record, reason))
        runtime = outcome.runtime
        if (news := issuer_pacing.announcement(previous, runtime)) is not None:
            self.sink.post(record.reference(), news.type, news.reason, news.message)
            level = logging.INFO if runtime.ready else logging.WARNING
            log.log(level, news.message, extra=issuer_log_fields(record, news.reason))
        self._wake_certificates(record, previous)
        if runtime.ready:
            # After waking the Certificates: publishing into many namespaces takes a while.
            await self._distribute_logged(record, outcome)
            await self._write_issuer_status(record, outcome, now)  # only if TrustDistributed moved
        self.queue.schedule(key, self._next_issuer_check(record, outcome, now), limited=False)

    def _wake_certificates(self, record: state.IssuerRecord, previous: state.IssuerRuntime) -> None:
        wake = issuer_pacing.certificate_wake(previous, record.runtime)
        for certificate_key in self.store.certificates_of(record.key) if wake else ():
            if wake == "recover":
                self.certificates.wake_after_recovery(certificate_key)
            else:
                # Re-issue every leaf (or refresh every ca.crt), spread out by the rate bound.
                self.certificates.reissue_soon(certificate_key)

    def _next_issuer_check(
        self, record: state.IssuerRecord, outcome: Outcome, now: datetime
    ) -> datetime:
        moments = [root.retain_until for root in outcome.roots if root.retain_until]
        if outcome.rotation is not None:
            moments.append(status.parse_timestamp(outcome.rotation["activateAfter"]) or now)
        at, record.failed_attempts = issuer_pacing.next_check(
            outcome.runtime.ready,
            record.failed_attempts,
            moments,
            now,
            backoff=self.settings.backoff,
            resync=self.settings.issuer_resync,
        )
        return at

    async def _distribute_logged(self, record: state.IssuerRecord, outcome: Outcome) -> None:
        """Distributes the trust bundle; posts an Event for each new conflict."""
        before = set(self._trust_conflicts.get(record.key, ()))
        try:
            conflicts = await self._distribute(record, outcome)
        except kube.KubeError as err:
            log.warning(
                "trust distribution failed: %s", err,
                extra=issuer_log_fields(record, "TrustDistributionFailed"),
            )  # fmt: skip
            return
        self._trust_conflicts[record.key] = conflicts
        for message in conflicts:
            if message not in before:
                self.sink.post(record.reference(), "Warning", "TrustDistributionConflict", message)
                log.warning(message, extra=issuer_log_fields(record, "TrustDistributionConflict"))

    def _trust_condition(self, record: state.IssuerRecord, now: datetime) -> dict[str, Any] | None:
        """The ``TrustDistributed`` condition, None while there is nothing to report."""
        trust = record.spec.trust_distribution if record.spec else None
        conflicts = self._trust_conflicts.get(record.key)
        if trust is None or conflicts is None:
            return None
        status_, reason, message = distribution.condition(conflicts, trust.config_map_name)
        return status.condition(
            record.status.get("conditions"),
            type_="TrustDistributed",
            status=status_,
            reason=reason,
            message=message,
            generation=record.generation,
            now=now,
        )

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
                ),
                *filter(None, [self._trust_condition(record, now)]),
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

    async def _distribute(self, record: state.IssuerRecord, outcome: Outcome) -> tuple[str, ...]:
        """Keeps the trust ConfigMaps (and the ClusterTrustBundle) equal to the bundle.

        Writes and deletes only objects carrying this issuer's ownership labels.

        Returns:
            The conflicts: objects of the wanted names that certmint did not create.
        """
        spec = record.spec
        if spec is None:
            return ()
        runtime, trust = outcome.runtime, spec.trust_distribution
        published = await self._published_config_maps(record)
        wanted: set[str] = set()
        if trust is not None and runtime.bundle_pem:
            # Namespaces are listed at each issuer resync rather than watched: a new
            # namespace gets its ConfigMap within one resync interval.
            namespaces = await self.api.list_namespaces() if not record.namespace else {}
            wanted = distribution.target_namespaces(trust, record.namespace, namespaces)
        name = trust.config_map_name if trust else ""
        conflicts: list[str] = []
        for namespace in sorted(wanted):
            if published.get(namespace, ("", "", ""))[:2] == (name, runtime.bundle_digest):
                continue
            try:
                written = await self._write_config_map(record, outcome, namespace, name)
            except kube.KubeError as err:
                if err.status in (403, 404):  # a namespace being deleted refuses new objects
                    continue
                raise
            if written is None:
                conflicts.append(
                    distribution.conflict_message(
                        f'ConfigMap "{namespace}/{name}"', record.kind, record.name,
                        "Choose another trustDistribution.configMapName or delete that "
                        "ConfigMap.",
                    )
                )  # fmt: skip
            stale = published.pop(namespace, None)
            if stale is not None and stale[0] != name:
                await self.api.delete_config_map(namespace, stale[0], uid=stale[2])
            if written is not None:
                published[namespace] = written
        for namespace in sorted(set(published) - wanted):
            stale = published.pop(namespace)
            await self.api.delete_config_map(namespace, stale[0], uid=stale[2])
        bundle_conflict = await self._publish_cluster_bundle(
            record, runtime, publish=trust is not None and trust.cluster_trust_bundle
        )
        return (*conflicts, *([bundle_conflict] if bundle_conflict else []))

    async def _published_config_maps(self, record: state.IssuerRecord) -> dict[str, Published]:
        """This issuer's trust ConfigMaps by namespace, listed again by its labels now and then.

        The listing is remembered for `RELIST_EVERY_RESYNCS` issuer resyncs: a ConfigMap
        deleted or changed by someone else is repaired within that time.
        """
        published = self._published.get(record.key)
        now = self.clock()
        listed_at = self._published_at.get(record.key)
        if listed_at is None or now - listed_at >= self.settings.issuer_resync * (
            RELIST_EVERY_RESYNCS
        ):
            published = None
        if published is None:
            self._published_at[record.key] = now
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
                    str(item["metadata"].get("uid", "")),
                )
                for item in existing
            }
            self._published[record.key] = published
        return published

    async def _write_config_map(
        self, record: state.IssuerRecord, outcome: Outcome, namespace: str, name: str
    ) -> Published | None:
        """Creates the trust ConfigMap, or updates it when it is this issuer's.

        Returns:
            What was written, or None when a ConfigMap of that name is not this issuer's
            (nothing was written).
        """
        spec, runtime = record.spec, outcome.runtime
        assert spec is not None  # noqa: S101 -- _distribute checked
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
            result = await self.api.create_config_map(namespace, body)
        except kube.ConflictError:
            existing = await self.api.get_config_map(namespace, name)
            if existing is None:
                raise  # deleted meanwhile: the next resync creates it
            if not distribution.owns(existing, record.kind, record.name):
                return None
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            result = await self.api.replace_config_map(namespace, name, body)
        return (name, runtime.bundle_digest, str(result["metadata"].get("uid", "")))

    async def _publish_cluster_bundle(
        self, record: state.IssuerRecord, runtime: state.IssuerRuntime, *, publish: bool
    ) -> str | None:
        """Creates, updates or deletes this issuer's ClusterTrustBundle, if it is its own.

        Returns:
            The conflict message when one of that name is not this issuer's, else None.
        """
        key, name = record.key, distribution.cluster_trust_bundle_name(record.kind, record.name)
        done = runtime.bundle_digest if publish else ""
        if record.namespace or self._cluster_bundles.get(key) == done:
            return None  # an Issuer never publishes one (nor may it read them)
        existing = await self.api.get_cluster_trust_bundle(name)
        owned = distribution.owns(existing, record.kind, record.name)
        if existing is not None and not owned:
            if not publish:
                self._cluster_bundles[key] = done
                return None
            return distribution.conflict_message(
                f'ClusterTrustBundle "{name}"', record.kind, record.name,
                "Set trustDistribution.clusterTrustBundle to false or delete that "
                "ClusterTrustBundle.",
            )  # fmt: skip
        body = distribution.cluster_trust_bundle_body(record.kind, record.name, runtime.bundle_pem)
        if existing is not None and not publish:
            await self.api.delete_cluster_trust_bundle(name, existing["metadata"]["uid"])
        elif existing is not None:
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            await self.api.replace_cluster_trust_bundle(name, body)
        elif publish:
            await self.api.create_cluster_trust_bundle(body)
        self._cluster_bundles[key] = done
        return None
