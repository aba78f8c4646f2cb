"""The PodCertificateRequest signer: watch, decide (`certmint.core.pod_certificates`), act.

Started by the runner when the operator watches every namespace. It waits until the API
server serves ``certificates.k8s.io/v1beta1`` podcertificaterequests (a beta API behind a
feature gate), then follows the requests with certmint's informer. Requests for signer
names under ``certmint.io/`` are kept while pending and reconciled by a small worker pool
on the leader only. An answer is one status write over the resourceVersion that was read:
the API server refuses a second answer, so a restart or a second replica never signs a
request twice into its status. Each signing issuer's trust bundle is published as a
ClusterTrustBundle with its ``signerName``.

Costs per request: one status write and one Event; nothing is read from the API.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from certmint.api import pod_certificates as api
from certmint.core import distribution, state
from certmint.core import pod_certificate_requests as requests
from certmint.core import pod_certificates as decisions
from certmint.k8s import informer, kube, leader
from certmint.pki import decode, errors, issuing
from certmint.runtime import metrics, scheduler, workers

if TYPE_CHECKING:
    from certmint.runtime.settings import Settings

log = logging.getLogger("certmint.pod_certificates")

GROUP_VERSION = "/apis/certificates.k8s.io/v1beta1"
KIND = informer.Kind(GROUP_VERSION, "podcertificaterequests")
#: Signing is CPU in the default executor; a few workers keep the event loop free.
WORKERS = 4
#: How often requests waiting for their issuer are looked at again, and bundles checked.
RESYNC_S = 1.0
#: How often the API server is asked whether it serves PodCertificateRequests yet.
DISCOVERY_S = 30.0
PostEvent = Callable[[Mapping[str, Any], str, str, str], None]
Key = tuple[str, str]


def _now() -> datetime:
    return datetime.now(UTC)


def reference(request: requests.PodCertificateRequest) -> dict[str, Any]:
    """The object reference Events about a request carry."""
    return {
        "apiVersion": "certificates.k8s.io/v1beta1",
        "kind": "PodCertificateRequest",
        "metadata": {"namespace": request.namespace, "name": request.name, "uid": request.uid},
    }


class PodCertificateSigner:
    """Signs the PodCertificateRequests of the issuers that opted in."""

    def __init__(
        self,
        api_: kube.Kube,
        store: state.Store,
        settings: Settings,
        post_event: PostEvent,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.api = api_
        self.store = store
        self.settings = settings
        self.post_event = post_event
        self.clock = clock
        self.queue: scheduler.WorkQueue[Key] = scheduler.WorkQueue(
            settings.renewal_rate, settings.renewal_burst
        )
        self.slots = decisions.RefreshSlots(settings.renewal_rate)
        #: Pending requests of certmint.io signers, as last seen.
        self.pending: dict[Key, requests.PodCertificateRequest] = {}
        #: Requests whose issuer was not ready.
        self.waiting: set[Key] = set()
        #: Per signer name: the bundle digest published and the issuer's (kind, name).
        self.published: dict[str, tuple[str, str, str]] = {}

    @property
    def queues(self) -> dict[str, scheduler.WorkQueue[Key]]:
        """The work queue, by its name in ``certmint_workqueue_depth``."""
        return {"podcertificaterequests": self.queue}

    def tasks(
        self,
        connection: informer.Connection,
        elector: leader.LeaderElector,
        synced: Callable[[], Awaitable[None]],
        namespaces: Sequence[str],
    ) -> list[asyncio.Task[None]]:
        """The signer's task when the operator watches every namespace (no ``namespaces``).

        A signer's permissions are cluster-wide, and so are its requests: an operator
        confined to some namespaces (``-n``) signs no pod certificates.
        """
        if namespaces:
            return []
        work = self.run(connection, elector, synced)
        return [asyncio.create_task(work, name="pod-certificates")]

    # Watch ----------------------------------------------------------------------------
    def handle(self, type_: str, body: Mapping[str, Any]) -> None:
        """Informer handler: keeps pending requests of certmint's signers, queues them."""
        key = informer.object_key(body)
        signer = str((body.get("spec") or {}).get("signerName", ""))
        if type_ == "DELETED" or not signer.startswith(f"{api.SIGNER_DOMAIN}/"):
            self.pending.pop(key, None)
            return
        try:
            request = requests.PodCertificateRequest.from_body(body)
        except requests.RequestError as err:
            log.warning("PodCertificateRequest %s/%s unreadable: %s", *key, err.message)
            return
        if request.answered:
            self.pending.pop(key, None)
            return
        self.pending[key] = request
        self.queue.add(key)

    # Reconcile ------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> None:
        """Gather (the request, its signer's issuers), decide, act."""
        request = self.pending.get(key)
        if request is None:
            self.queue.forget(key)
            return
        claimants = decisions.claimants(request.signer_name, self.store.issuers.values())
        plan = decisions.decide(request, claimants)
        if plan.action == "wait" or not claimants:
            self.waiting.add(key)  # looked at again once an issuer claims it and is ready
        elif plan.action == "issue":
            await self._issue(request, plan)
        elif plan.action in ("deny", "fail"):
            await self._refuse(request, plan)

    async def _issue(self, request: requests.PodCertificateRequest, plan: decisions.Plan) -> None:
        started = time.perf_counter()
        issuer = plan.issuer
        assert issuer is not None  # noqa: S101 -- an "issue" plan names its issuer
        signer = issuer.runtime.signer
        now = self.clock()
        if signer is None:  # a ready CA issuer always has one; selfSigned cannot opt in
            failure = f"{issuer.kind} {issuer.name} has no CA to sign with"
            await self._refuse(request, decisions.Plan("fail", "IssuanceFailed", failure, issuer))
            return
        try:
            leaf = decisions.leaf_request(plan, request.namespace, self.settings.claims_oid)
            issued = await asyncio.get_running_loop().run_in_executor(
                None, issuing.issue, leaf, signer, now
            )
        except errors.PKIError as err:
            await self._refuse(request, decisions.Plan("fail", "IssuanceFailed", str(err), issuer))
            return
        problem = decisions.issued_problem(issued)
        if problem is not None:
            await self._refuse(request, decisions.Plan("fail", "CAExpiresTooSoon", problem, issuer))
            return
        certificate = issued.certificate
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        serial = decode.serial_hex(certificate)
        refresh_at = self.slots.reserve(
            decisions.begin_refresh_at(not_before, not_after, f"{request.namespace}/{serial}"),
            not_before + decisions.REFRESH_MARGIN,
            not_after - decisions.REFRESH_MARGIN,
        )
        message = (
            f"issued pod certificate serial {serial} to {request.namespace}/{request.name} "
            f"for {leaf.spiffe_id}, valid until {not_after.isoformat()}, "
            f"refresh from {refresh_at.isoformat()}: {plan.message}"
        )
        try:
            written = await self._write(
                request, decisions.issued_status(issued, refresh_at, message, now)
            )
        except kube.KubeError as err:
            if err.status != HTTPStatus.UNPROCESSABLE_ENTITY:
                raise  # retried by the worker
            refused = f"the API server refused the certificate: {err}"
            await self._refuse(request, decisions.Plan("fail", "IssuanceRefused", refused, issuer))
            return
        if not written:
            return
        metrics.observe_issuance(issuer.name, issuer.kind, "success", time.perf_counter() - started)
        log.info(message, extra=self._fields(request, "Issued"))
        self.post_event(reference(request), "Normal", "Issued", message)

    async def _refuse(self, request: requests.PodCertificateRequest, plan: decisions.Plan) -> None:
        """Writes Denied or Failed; counts it like a Certificate's denial or failure."""
        type_ = "Denied" if plan.action == "deny" else "Failed"
        now = self.clock()
        body = {"conditions": [decisions.condition(type_, plan.reason, plan.message, now)]}
        if not await self._write(request, body):
            return
        issuer = plan.issuer
        if issuer is not None:
            result = "denied" if type_ == "Denied" else "failure"
            metrics.observe_issuance(issuer.name, issuer.kind, result)
        if plan.denial:
            metrics.POLICY_DENIALS.labels(reason=plan.denial).inc()
        log.warning(
            "%s PodCertificateRequest %s/%s (pod %s): %s",
            type_, request.namespace, request.name, request.pod_name, plan.message,
            extra=self._fields(request, plan.reason),
        )  # fmt: skip
        self.post_event(reference(request), "Warning", type_, f"{plan.reason}: {plan.message}")

    async def _write(
        self, request: requests.PodCertificateRequest, body: Mapping[str, Any]
    ) -> bool:
        """One answer over the resourceVersion read; False when someone else answered."""
        try:
            await self.api.answer_pod_certificate_request(
                request.namespace, request.name, request.resource_version, body
            )
        except (kube.ConflictError, kube.NotFoundError) as err:
            # Changed or gone since read: the watch delivers what it is now.
            log.info("not answering: %s", err, extra=self._fields(request, "Changed"))
            return False
        self.pending.pop(request.key, None)
        return True

    @staticmethod
    def _fields(request: requests.PodCertificateRequest, reason: str) -> dict[str, Any]:
        return {
            "namespace": request.namespace,
            "podcertificaterequest": request.name,
            "pod": request.pod_name,
            "signer": request.signer_name,
            "reason": reason,
        }

    # Trust bundles --------------------------------------------------------------------
    async def publish_bundles(self) -> None:
        """Keeps one ClusterTrustBundle per signer name equal to its issuer's roots."""
        by_signer: dict[str, list[state.IssuerRecord]] = {}
        for record in self.store.issuers.values():
            signing = record.spec.pod_certificates if record.spec else None
            if signing is not None:
                by_signer.setdefault(signing.signer_name, []).append(record)
        for signer, records in by_signer.items():
            record = records[0]
            if len(records) > 1 or not record.runtime.ready or not record.runtime.bundle_pem:
                continue
            digest = hashlib.sha256(record.runtime.bundle_pem).hexdigest()
            if self.published.get(signer) != (digest, record.kind, record.name):
                await self._publish(record, record.runtime.bundle_pem)
                self.published[signer] = (digest, record.kind, record.name)
        for signer in [s for s in self.published if len(by_signer.get(s, ())) != 1]:
            await self._withdraw(signer, *self.published.pop(signer)[1:])

    async def _withdraw(self, signer: str, kind: str, name: str) -> None:
        """Deletes the bundle of a signer name no issuer (or more than one) claims now."""
        bundle = api.PodCertificatesSpec(signer).cluster_trust_bundle_name
        existing = await self.api.get_cluster_trust_bundle(bundle)
        if existing is not None and distribution.owns(existing, kind, name):
            await self.api.delete_cluster_trust_bundle(bundle, existing["metadata"]["uid"])
            log.info(
                "deleted ClusterTrustBundle %s: %s no longer signs for %s", bundle, name, signer
            )

    async def _publish(self, record: state.IssuerRecord, bundle_pem: bytes) -> None:
        assert record.spec is not None  # noqa: S101 -- publish_bundles checked it
        assert record.spec.pod_certificates is not None  # noqa: S101
        body = decisions.cluster_trust_bundle_body(
            record.spec.pod_certificates, record.kind, record.name, bundle_pem
        )
        name = body["metadata"]["name"]
        existing = await self.api.get_cluster_trust_bundle(name)
        if existing is None:
            await self.api.create_cluster_trust_bundle(body)
        elif distribution.owns(existing, record.kind, record.name):
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            await self.api.replace_cluster_trust_bundle(name, body)
        else:
            message = distribution.conflict_message(
                f'ClusterTrustBundle "{name}"', record.kind, record.name,
                "Delete it, or choose another podCertificates.signerName.",
            )  # fmt: skip
            log.warning(message, extra={"issuer": f"{record.kind}/{record.name}"})
            self.post_event(record.reference(), "Warning", "TrustBundleConflict", message)
            return
        log.info("published ClusterTrustBundle %s", name)

    # Run ------------------------------------------------------------------------------
    async def served(self, connection: informer.Connection) -> bool:
        """Whether the API server serves PodCertificateRequests (beta, feature-gated)."""
        try:
            response = await connection.get(GROUP_VERSION, {})
            async with response:
                resources = (await response.json()).get("resources") or ()
        except informer.REQUEST_FAILURES:
            return False
        return any(item.get("name") == KIND.plural for item in resources)

    async def resync(self, elector: leader.LeaderElector) -> None:
        """Wakes requests that waited for their issuer; publishes bundles (leader only)."""
        while True:
            await asyncio.sleep(RESYNC_S)
            if not elector.is_leader():
                continue
            self._wake_waiting()
            try:
                await self.publish_bundles()
            except kube.KubeError as err:
                log.warning("publishing pod certificate trust bundles failed: %s", err)

    def _wake_waiting(self) -> None:
        """Queues the waiting requests whose signer name an issuer now answers for."""
        answerable: dict[str, bool] = {}
        for key in list(self.waiting):
            request = self.pending.get(key)
            if request is None:
                self.waiting.discard(key)
                continue
            signer = request.signer_name
            if signer not in answerable:
                claimants = decisions.claimants(signer, self.store.issuers.values())
                answerable[signer] = len(claimants) > 1 or any(
                    each.runtime.ready for each in claimants
                )
            if answerable[signer]:
                self.waiting.discard(key)
                self.queue.add(key)

    async def run(
        self,
        connection: informer.Connection,
        elector: leader.LeaderElector,
        synced: Callable[[], Awaitable[None]],
    ) -> None:
        """Waits until the API is served and the issuers are listed, then watches, signs
        and publishes until cancelled."""
        while not await self.served(connection):
            log.info("PodCertificateRequests are not served; pod certificates are off for now")
            await asyncio.sleep(DISCOVERY_S)
        await synced()
        watch = informer.Informer(connection, KIND, self.handle)
        async with asyncio.TaskGroup() as group:
            group.create_task(watch.run())
            group.create_task(self.resync(elector))
            group.create_task(
                workers.run(
                    [workers.Pool(self.queue, self.reconcile, WORKERS)],
                    elector.wait_for_leadership,
                    clock=self.clock,
                    retry_cap=self.settings.retry_cap,
                )
            )
