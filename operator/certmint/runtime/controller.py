"""Reconciliation: gather from the store, decide with pure code, act with few API calls.

An issuance costs one Secret write (the commit point), one status patch and one Event.
A Certificate that is up to date costs nothing: its status is compared with what it
would be and written only when it differs.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from certmint.api import model
from certmint.core import issuance, policy, readiness, secret_format, state, status
from certmint.k8s import kube
from certmint.pki import ca as pki_ca
from certmint.pki import claims, decode, errors, issuing, keys, renewal
from certmint.runtime import authority, issuers, metrics, scheduler

log = logging.getLogger("certmint.runtime.controller")

#: Issuers reconciled concurrently (a new leader re-reads every CA before it issues).
ISSUER_WORKERS = 4
#: A Secret in conflict is read again after 1, 2, 4... seconds, at most this far apart:
#: certmint watches only the Secrets it labelled, so no event says a foreign one went.
CONFLICT_RECHECK_CAP = timedelta(seconds=10)

CertificateQueue = scheduler.WorkQueue[state.ObjectKey]
IssuerQueue = scheduler.WorkQueue[state.IssuerKey]


@dataclasses.dataclass(frozen=True)
class Settings:
    """Operator knobs (see docs/operations.md).

    Attributes:
        operator_namespace: Where ClusterIssuer CA Secrets and the leader Lease live.
        workers: Certificates reconciled concurrently.
        renewal_rate: Scheduled re-issues (renewals, CA rotation) per second, at most.
        renewal_burst: Scheduled re-issues that may start at once.
        retry_base: First delay after a failed issuance.
        retry_cap: Longest delay between failed issuances.
        issuer_resync: How often a ready issuer re-reads its CA Secret.
        claims_oid: The OID new certificates carry their claims under (``--claims-oid``).
    """

    operator_namespace: str = "certmint-system"
    workers: int = 16
    renewal_rate: float = 20.0
    renewal_burst: int = 20
    retry_base: timedelta = renewal.DEFAULT_BACKOFF_BASE
    retry_cap: timedelta = renewal.DEFAULT_BACKOFF_CAP
    issuer_resync: timedelta = timedelta(seconds=30)
    claims_oid: x509.ObjectIdentifier = claims.CLAIMS_OID


def _now() -> datetime:
    return datetime.now(UTC)


def _log_fields(record: state.CertificateRecord, reason: str) -> dict[str, Any]:
    issuer = record.issuer_key
    return {
        "namespace": record.namespace,
        "certificate": record.name,
        "issuer": f"{issuer[0]}/{issuer[2]}" if issuer else "",
        "reason": reason,
    }


def _issuer_labels(record: state.CertificateRecord) -> tuple[str, str]:
    """The (name, kind) of a Certificate's issuer, for metric labels."""
    key = record.issuer_key
    return (key[2], key[0]) if key else ("", "")


class Controller(issuers.IssuerReconciliation):
    """Reconciles Certificates and issuers held in a `state.Store`."""

    def __init__(
        self,
        api: kube.Kube,
        store: state.Store,
        settings: Settings,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.api = api
        self.store = store
        self.settings = settings
        self.clock = clock
        self.certificates: CertificateQueue = scheduler.WorkQueue(
            settings.renewal_rate, settings.renewal_burst
        )
        self.issuers: IssuerQueue = scheduler.WorkQueue(rate=10.0, burst=10)
        #: Certificates allowed to skip their failure backoff once (their issuer recovered).
        self.skip_backoff: set[state.ObjectKey] = set()
        self.authority = authority.Authority(api, settings.operator_namespace)
        #: Trust ConfigMaps written, per issuer: namespace -> (name, bundle digest, uid).
        self._published: dict[state.IssuerKey, dict[str, issuers.Published]] = {}
        #: The bundle digest in each issuer's ClusterTrustBundle ("" once none is wanted).
        self._cluster_bundles: dict[state.IssuerKey, str] = {}
        #: Each issuer's trust distribution conflicts, as last found.
        self._trust_conflicts: dict[state.IssuerKey, tuple[str, ...]] = {}
        #: When each issuer's trust ConfigMaps were last listed.
        self._published_at: dict[state.IssuerKey, datetime] = {}
        self._background: set[asyncio.Task[None]] = set()
        #: Certificates blocked by a SecretConflict: how often the Secret was read again.
        self._conflict_rechecks: dict[state.ObjectKey, int] = {}

    # Events -------------------------------------------------------------------------
    def post_event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None:
        """Posts an Event in the background; a failure to post is logged, not raised."""
        self.in_background(
            self.api.post_event(involved, type_, reason, message, status.timestamp(self.clock())),
            f"posting the {reason} Event",
        )

    def in_background(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        """Runs ``work`` as a task of its own; an API failure is logged as ``what`` failing."""

        async def run() -> None:
            try:
                await work
            except kube.KubeError as err:
                log.warning("%s failed: %s", what, err)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Certificates -------------------------------------------------------------------
    async def reconcile_certificate(self, key: state.ObjectKey) -> None:
        admitted = self.certificates.take_admission(key)  # before any early return
        record = self.store.certificates.get(key)
        if record is None:
            self.certificates.forget(key)
            self._conflict_rechecks.pop(key, None)
            return
        issuer = self.store.issuers.get(record.issuer_key) if record.issuer_key else None
        spec = record.spec
        secret = self.store.secrets.get((record.namespace, spec.secret_name)) if spec else None
        account = spec.service_account_name if spec else None
        inputs = readiness.Inputs(
            certificate=record,
            issuer=issuer,
            secret=secret,
            service_account_exists=bool(account)
            and (record.namespace, account or "") in self.store.service_accounts,
        )
        now = self.clock()
        if issuer is not None and issuer.runtime is state.NOT_RECONCILED:
            return  # the issuer's first reconciliation wakes its Certificates
        decision = readiness.decide(inputs, now)
        if decision.reason in readiness.RATE_BOUND and not admitted:
            self.certificates.schedule(key, now)  # through the token bucket
            return
        if decision.reason == "ServiceAccountNotFound" and account:
            self.store.waiting_for_account[(record.namespace, account)].add(key)
        if (decision.action == "issue" or decision.retryable) and self._backing_off(record, now):
            return
        try:
            await self._act(record, issuer, secret, decision, now)
        except kube.ConflictError:
            await self._refetch_secret(record)
        except (kube.KubeError, errors.PKIError) as err:
            if isinstance(err, kube.KubeError) and kube.is_transient(err):
                raise  # not the Certificate's failure: the worker retries it soon
            failure = readiness.Decision("block", "Failed", f"issuance failed: {err}")
            await self._record_failure(record, failure, now)

    async def _act(
        self,
        record: state.CertificateRecord,
        issuer: state.IssuerRecord | None,
        secret: secret_format.SecretState | None,
        decision: readiness.Decision,
        now: datetime,
    ) -> None:
        """Carries out a decision: issue, refresh the bundle, record a failure or settle."""
        if await self._conflict_cleared(record, decision, now):
            return
        if decision.action == "issue":
            assert issuer is not None  # noqa: S101 -- decide() blocks without an issuer
            await self._issue(record, issuer, secret, decision, now)
        elif decision.action == "update-bundle":
            assert issuer is not None  # noqa: S101 -- decide() checked both
            assert secret is not None  # noqa: S101
            await self._refresh_bundle(record, issuer, secret)
        elif decision.retryable:
            await self._record_failure(record, decision, now)
        else:
            await self._settle(record, secret, decision, now)

    async def _conflict_cleared(
        self, record: state.CertificateRecord, decision: readiness.Decision, now: datetime
    ) -> bool:
        """Reads a conflicting Secret again instead of trusting the store's copy.

        The store learns about a foreign Secret only from a read (it is not labelled, so
        the Secret watch never delivers it, nor its deletion). Each SecretConflict
        decision reads it again and schedules another read with a growing delay capped
        at `CONFLICT_RECHECK_CAP`, so the conflict clears within seconds of its cause.

        Returns:
            True when the Secret is gone or now belongs to this Certificate: the store is
            updated and the Certificate queued to decide again.

        Raises:
            KubeError: The Secret could not be read.
        """
        if decision.reason != "SecretConflict" or record.spec is None:
            self._conflict_rechecks.pop(record.key, None)
            return False
        store_key = (record.namespace, record.spec.secret_name)
        body = await self.api.get_secret(*store_key)
        fresh = secret_format.read_secret(body) if body is not None else None
        if fresh is None or fresh.owner == record.name:
            if fresh is None:
                self.store.secrets.pop(store_key, None)
            else:
                self.store.secrets[store_key] = fresh
            self._conflict_rechecks.pop(record.key, None)
            self.certificates.add(record.key)
            return True
        self.store.secrets[store_key] = fresh
        checks = self._conflict_rechecks.get(record.key, 0)
        self._conflict_rechecks[record.key] = checks + 1
        delay = min(timedelta(seconds=2 ** min(checks, 10)), CONFLICT_RECHECK_CAP)
        self.certificates.schedule(record.key, now + delay, limited=False)
        return False

    def _backing_off(self, record: state.CertificateRecord, now: datetime) -> bool:
        """Defers work while a failure backoff runs; a spec change or a recovered issuer ends it."""
        attempts = self._failed_attempts(record)
        last = status.parse_timestamp(record.status.get("lastFailureTime"))
        if record.key in self.skip_backoff:
            self.skip_backoff.discard(record.key)
            return False
        if not attempts or last is None:
            return False
        # lastFailureTime has whole seconds: count from the end of that second, never early.
        retry_at = renewal.next_retry_time(
            last + timedelta(seconds=1),
            attempts,
            base=self.settings.retry_base,
            cap=self.settings.retry_cap,
        )
        if now >= retry_at:
            return False
        self.certificates.schedule(record.key, retry_at, limited=False)
        return True

    @staticmethod
    def _failed_attempts(record: state.CertificateRecord) -> int:
        """Consecutive failures, reset by a spec change (a new generation)."""
        ready = status.find_condition(record.status, "Ready")
        if ready is None or ready.get("observedGeneration") != record.generation:
            return 0
        return int(record.status.get("failedIssuanceAttempts") or 0)

    async def _issue(
        self,
        record: state.CertificateRecord,
        issuer: state.IssuerRecord,
        secret: secret_format.SecretState | None,
        decision: readiness.Decision,
        now: datetime,
    ) -> None:
        started = time.perf_counter()
        spec, issuer_spec = record.spec, issuer.spec
        assert spec is not None  # noqa: S101 -- decided above
        assert issuer_spec is not None  # noqa: S101
        runtime = issuer.runtime
        private_key = await self._private_key(record, spec, secret)
        duration = policy.effective_duration(issuer_spec.policy, spec)
        request = issuance.leaf_request(
            spec,
            issuer_spec,
            record.namespace,
            private_key.public_key(),
            duration,
            claims_oid=self.settings.claims_oid,
        )
        signer: pki_ca.CertificateAuthority | keys.PrivateKey = runtime.signer or private_key
        issued = await asyncio.get_running_loop().run_in_executor(
            None, issuing.issue, request, signer, now
        )
        bundle_pem = runtime.bundle_pem or issued.certificate_pem
        revision = max(secret.revision if secret else 0, int(record.status.get("revision") or 0))
        content = secret_format.SecretContent(
            namespace=record.namespace,
            certificate_name=record.name,
            certificate_uid=record.uid,
            spec=spec,
            spec_hash=record.spec_hash,
            issued=issued,
            private_key=private_key,
            bundle_pem=bundle_pem,
            identity=str(request.spiffe_id or ""),
            revision=revision + 1,
            renew_request=record.renew_request,
            pkcs12_password=await self._pkcs12_password(record, spec),
        )
        if secret is None:
            body = await self.api.create_secret(
                record.namespace, secret_format.secret_body(content)
            )
        else:
            body = await self.api.replace_secret(
                record.namespace,
                spec.secret_name,
                secret_format.secret_body(
                    content, resource_version=secret.resource_version, kept=secret
                ),
            )
        written = secret_format.written_secret(body, content)
        self.store.secrets[(record.namespace, spec.secret_name)] = written
        elapsed = time.perf_counter() - started
        metrics.observe_issuance(issuer.name, issuer.kind, "success", elapsed)
        renewing = decision.reason not in ("SecretMissing", "SpecChanged") and secret is not None
        message = (
            f"issued serial {decode.serial_hex(issued.certificate)} (revision {revision + 1}), "
            f"valid until {issued.certificate.not_valid_after_utc.isoformat()}: {decision.message}"
        )
        if issued.clamped:
            message += "; the lifetime was shortened to end with the issuing CA"
        log.info(message, extra=_log_fields(record, decision.reason))
        await self._settle(
            record,
            written,
            readiness.Decision(
                "ready", "Ready", "the certificate is up to date and has not expired"
            ),
            now,
            clamped=issued.clamped,
        )
        self.post_event(record.reference(), "Normal", "Renewed" if renewing else "Issued", message)

    async def _private_key(
        self,
        record: state.CertificateRecord,
        spec: model.CertificateSpec,
        secret: secret_format.SecretState | None,
    ) -> keys.PrivateKey:
        """A new key, or with ``rotationPolicy: Never`` the Secret's key when it still fits."""
        wanted = issuance.key_spec(spec.private_key)
        if (
            spec.private_key.rotation_policy == "Never"
            and secret is not None
            and secret.key_matches
        ):
            body = await self.api.get_secret(record.namespace, spec.secret_name)
            existing = secret_format.private_key_of(body) if body else None
            if existing is not None and keys.key_spec_of(existing) == wanted:
                return existing
        return await asyncio.get_running_loop().run_in_executor(
            None, keys.generate_private_key, wanted
        )

    async def _pkcs12_password(
        self, record: state.CertificateRecord, spec: model.CertificateSpec
    ) -> bytes | None:
        if spec.pkcs12 is None:
            return None
        body = await self.api.get_secret(record.namespace, spec.pkcs12.password_secret_name)
        value = ((body or {}).get("data") or {}).get(spec.pkcs12.password_secret_key)
        if value is None:
            raise errors.PKIError(
                "spec.keystores.pkcs12.passwordSecretRef",
                f'Secret "{spec.pkcs12.password_secret_name}" has no key '
                f'"{spec.pkcs12.password_secret_key}"',
            )
        return base64.b64decode(value)

    async def _refresh_bundle(
        self,
        record: state.CertificateRecord,
        issuer: state.IssuerRecord,
        secret: secret_format.SecretState,
    ) -> None:
        """Rewrites only ``ca.crt`` when the issuer's trust bundle changed."""
        body = await self.api.get_secret(record.namespace, secret.name)
        labels = ((body or {}).get("metadata") or {}).get("labels") or {}
        if body is None or labels.get(secret_format.LABEL_CERTIFICATE_NAME) != record.name:
            # Gone, or no longer this Certificate's: decide again from what is there now.
            await self._refetch_secret(record)
            return
        updated = secret_format.with_bundle(body, issuer.runtime.bundle_pem)
        written = await self.api.replace_secret(record.namespace, secret.name, updated)
        self.store.secrets[(record.namespace, secret.name)] = secret_format.read_secret(written)
        log.info("updated ca.crt", extra=_log_fields(record, "TrustBundleChanged"))
        self.certificates.add(record.key)

    async def _refetch_secret(self, record: state.CertificateRecord) -> None:
        """After a 409 the store was stale: read the Secret and decide again."""
        if record.spec is None:
            return
        body = await self.api.get_secret(record.namespace, record.spec.secret_name)
        store_key = (record.namespace, record.spec.secret_name)
        if body is None:
            self.store.secrets.pop(store_key, None)
        else:
            self.store.secrets[store_key] = secret_format.read_secret(body)
        self.certificates.add(record.key)

    async def _record_failure(
        self, record: state.CertificateRecord, decision: readiness.Decision, now: datetime
    ) -> None:
        attempts = self._failed_attempts(record) + 1
        issuer = record.issuer_key
        metrics.observe_issuance(
            issuer[2] if issuer else "", issuer[0] if issuer else "", "failure"
        )
        log.warning(
            "issuance attempt %d failed: %s",
            attempts,
            decision.message,
            extra=_log_fields(record, decision.reason),
        )
        await self._write_status(
            record,
            ready=("False", decision.reason, decision.message),
            issuing=("True", decision.reason, decision.message),
            extra={
                "failedIssuanceAttempts": attempts,
                "lastFailureTime": status.timestamp(now),
            },
            now=now,
        )
        self.post_event(record.reference(), "Warning", "Failed", decision.message)
        retry_at = renewal.next_retry_time(
            now, attempts, base=self.settings.retry_base, cap=self.settings.retry_cap
        )
        self.certificates.schedule(record.key, retry_at, limited=False)

    async def _settle(
        self,
        record: state.CertificateRecord,
        secret: secret_format.SecretState | None,
        decision: readiness.Decision,
        now: datetime,
        *,
        clamped: bool = False,
    ) -> None:
        """Writes the status for a decision that needs no signing, and schedules renewal."""
        extra: dict[str, Any] = {"failedIssuanceAttempts": None, "lastFailureTime": None}
        if decision.action == "ready" and secret is not None and secret.leaf is not None:
            leaf = secret.leaf
            due = readiness.renewal_time(record, leaf)
            issuer = self.store.issuers.get(record.issuer_key) if record.issuer_key else None
            identity = decode.identity_of(leaf)
            extra |= {
                "identity": str(identity) if identity else None,
                "serialNumber": decode.serial_hex(leaf),
                "notBefore": status.timestamp(leaf.not_valid_before_utc),
                "notAfter": status.timestamp(leaf.not_valid_after_utc),
                "renewalTime": status.timestamp(due),
                "revision": secret.revision,
                "issuerFingerprint": (
                    readiness.signing_ca_fingerprint(leaf, issuer.runtime) if issuer else None
                ),
            }
            self.certificates.schedule(record.key, due)
            message = decision.message
            if clamped:
                message += "; its lifetime was shortened to end with the issuing CA"
            await self._write_status(
                record,
                ready=("True", "Ready", message),
                issuing=("False", "Issued", "no issuance in progress"),
                extra=extra,
                now=now,
            )
            return
        was = status.find_condition(record.status, "Ready")
        await self._write_status(
            record,
            ready=("False", decision.reason, decision.message),
            issuing=("False", decision.reason, decision.message),
            extra=extra,
            now=now,
        )
        if was is None or (was.get("reason"), was.get("message")) != (
            decision.reason,
            decision.message,
        ):
            if decision.reason == "PolicyViolation":
                metrics.POLICY_DENIALS.labels(reason=decision.denial).inc()
                metrics.observe_issuance(*_issuer_labels(record), "denied")
            log.warning(decision.message, extra=_log_fields(record, decision.reason))
            event_reason = "Denied" if decision.reason == "PolicyViolation" else decision.reason
            self.post_event(record.reference(), "Warning", event_reason, decision.message)

    async def _write_status(
        self,
        record: state.CertificateRecord,
        *,
        ready: tuple[str, str, str],
        issuing: tuple[str, str, str],
        extra: Mapping[str, Any],
        now: datetime,
    ) -> None:
        previous = record.status.get("conditions")
        desired: dict[str, Any] = {
            "conditions": [
                status.condition(
                    previous,
                    type_="Ready",
                    status=ready[0],
                    reason=ready[1],
                    message=ready[2],
                    generation=record.generation,
                    now=now,
                ),
                status.condition(
                    previous,
                    type_="Issuing",
                    status=issuing[0],
                    reason=issuing[1],
                    message=issuing[2],
                    generation=record.generation,
                    now=now,
                ),
            ],
            **extra,
        }
        if status.unchanged(record.status, desired):
            return
        try:
            result = await self.api.patch_status(
                "Certificate", record.namespace, record.name, desired
            )
        except kube.NotFoundError:
            return  # deleted meanwhile
        record.status = result.get("status") or {}
        record.resource_version = str((result.get("metadata") or {}).get("resourceVersion", ""))

    # Deletion -----------------------------------------------------------------------
    async def delete_secret_of(self, record: state.CertificateRecord) -> None:
        """Carries out ``secretDeletionPolicy: Delete`` for a deleted Certificate."""
        if record.spec is None or record.spec.secret_deletion_policy != "Delete":  # noqa: S105
            return
        secret = self.store.secrets.get((record.namespace, record.spec.secret_name))
        if secret is None or secret.owner != record.name:
            return
        if (
            secret.annotations.get(secret_format.ANNOTATION_CERTIFICATE_UID, record.uid)
            != record.uid
        ):
            return
        await self.api.delete_secret(record.namespace, secret.name, uid=secret.uid)
        log.info(
            "deleted Secret %s with its Certificate",
            secret.name,
            extra=_log_fields(record, "Deleted"),
        )

    async def sweep_orphaned_secrets(self) -> None:
        """Deletes Secrets whose Delete-policy Certificate went away while nobody led.

        Only Secrets certmint issued (labelled), annotated ``Delete``, whose Certificate is
        absent from a fully synced store.
        """
        for (namespace, name), secret in list(self.store.secrets.items()):
            policy_ = secret.annotations.get(secret_format.ANNOTATION_DELETION_POLICY)
            if secret.owner is None or policy_ != "Delete":
                continue
            if (namespace, secret.owner) in self.store.certificates:
                continue
            await self.api.delete_secret(namespace, name, uid=secret.uid)
            log.info(
                "deleted Secret %s: its Certificate %s is gone", name, secret.owner,
                extra={"namespace": namespace, "certificate": secret.owner, "reason": "Deleted"},
            )  # fmt: skip

    # Workers ------------------------------------------------------------------------
    def _after_failure(self, queue: scheduler.WorkQueue[Any], key: Any, err: Exception) -> None:
        """Schedules a key again after a failure that escaped its reconciliation.

        An API failure is retried after a per-key backoff (`WorkQueue.failure_delay`): a
        transient one (no answer, 429, 5xx: `kube.is_transient`) within at most 30 s; any
        other (a 403 while a restarted API server's authorizer warms up, say) within at most
        ``retry_cap``. A warning is logged for the first failure of a run, the rest at debug
        level. Anything else is a bug: logged with its traceback, retried after ``retry_cap``.
        """
        if not isinstance(err, kube.KubeError):
            log.error("reconciling %s failed unexpectedly", key, exc_info=err)
            queue.schedule(key, self.clock() + self.settings.retry_cap, limited=False)
            return
        first = not queue.failures(key)
        cap = None if kube.is_transient(err) else self.settings.retry_cap.total_seconds()
        delay = queue.failure_delay(key, cap=cap)
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "reconciling %s: %s; retrying in %.1fs", key, err, delay,
        )  # fmt: skip
        queue.schedule(key, self.clock() + timedelta(seconds=delay), limited=False)

    async def run_workers(self, wait_for_leadership: Callable[[], Awaitable[None]]) -> None:
        """Runs the timers and worker pools until cancelled; only the leader acts.

        A worker takes a key, then waits until this replica leads (a standby holds its
        keys); an unexpected error costs that key one retry after ``retry_cap``.
        """

        async def work(queue: scheduler.WorkQueue[Any], reconcile: Callable[[Any], Any]) -> None:
            while True:
                key = await queue.get()
                try:
                    await wait_for_leadership()
                    queue.started(key)
                    await reconcile(key)
                    queue.succeeded(key)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    self._after_failure(queue, key, err)
                finally:
                    queue.done(key)

        async with asyncio.TaskGroup() as group:
            group.create_task(self.certificates.run_timer())
            group.create_task(self.issuers.run_timer())
            for _ in range(ISSUER_WORKERS):
                group.create_task(work(self.issuers, self.reconcile_issuer))
            for _ in range(self.settings.workers):
                group.create_task(work(self.certificates, self.reconcile_certificate))
