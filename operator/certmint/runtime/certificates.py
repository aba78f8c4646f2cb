"""The certificate reconciler: gather from the store, decide with pure code, act, apply.

An issuance costs one Secret write (the commit point), one status patch and one Event.
A Certificate that is up to date costs nothing: `certmint.core.outcome` says what its
status should be, and only the fields that differ are patched.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, TypeVarTuple

from certmint.api import certificate_types, resources
from certmint.core import issuance, outcome, policy, readiness, secret_format, state, status
from certmint.k8s import kube
from certmint.pki import ca as pki_ca
from certmint.pki import errors, issuing, keys
from certmint.runtime import events, metrics, scheduler, settings

log = logging.getLogger("certmint.controller")  # the reconcilers share it: see events.py

#: A Secret in conflict is read again after 1, 2, 4... seconds, at most this far apart:
#: certmint watches only the Secrets it labelled, so no event says a foreign one went.
CONFLICT_RECHECK_CAP = timedelta(seconds=10)

CertificateQueue = scheduler.WorkQueue[state.CertificateKey]


def log_fields(record: state.CertificateRecord, reason: str) -> dict[str, Any]:
    issuer = record.issuer_key
    return {
        "namespace": record.namespace,
        "certificate": record.name,
        "issuer": f"{issuer.kind}/{issuer.name}" if issuer else "",
        "reason": reason,
    }


class CertificateReconciler:
    """Reconciles the Certificates held in a `state.Store`, one key at a time."""

    def __init__(
        self,
        api: kube.Kube,
        store: state.Store,
        config: settings.Settings,
        sink: events.EventSink,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.api = api
        self.store = store
        self.settings = config
        self.sink = sink
        self.clock = clock
        self.queue: CertificateQueue = scheduler.WorkQueue(
            config.renewal_rate, config.renewal_burst
        )
        #: Certificates allowed to skip their failure backoff once (their issuer recovered).
        self._skip_backoff: set[state.CertificateKey] = set()
        #: Certificates blocked by a SecretConflict: how often the Secret was read again.
        self._conflict_rechecks: dict[state.CertificateKey, int] = {}

    # What the issuer reconciler asks for ------------------------------------------------
    def wake_after_recovery(self, key: state.CertificateKey) -> None:
        """Reconciles ``key`` now, skipping its failure backoff once: its issuer recovered."""
        self._skip_backoff.add(key)
        self.queue.add(key)

    def reissue_soon(self, key: state.CertificateKey) -> None:
        """Reconciles ``key`` through the rate bound: its issuer's CA or bundle changed."""
        self.queue.schedule(key, self.clock())

    # Reconciliation --------------------------------------------------------------------
    def _inputs(self, record: state.CertificateRecord) -> readiness.Inputs:
        """Gathers what `readiness.decide` looks at from the store."""
        issuer = self.store.issuers.get(record.issuer_key) if record.issuer_key else None
        spec = record.spec
        secret = self.store.secrets.get((record.namespace, spec.secret_name)) if spec else None
        account = spec.service_account_name if spec else None
        return readiness.Inputs(
            certificate=record,
            issuer=issuer,
            secret=secret,
            service_account_exists=bool(account)
            and (record.namespace, account or "") in self.store.service_accounts,
        )

    async def reconcile(self, key: state.CertificateKey) -> None:
        admitted = self.queue.take_admission(key)  # before any early return
        record = self.store.certificates.get(key)
        if record is None:
            self.queue.forget(key)
            self._conflict_rechecks.pop(key, None)
            return
        inputs = self._inputs(record)
        if inputs.issuer is not None and inputs.issuer.runtime is state.NOT_RECONCILED:
            return  # the issuer's first reconciliation wakes its Certificates
        now = self.clock()
        decision = readiness.decide(inputs, now)
        account = record.spec.service_account_name if record.spec else None
        if decision.reason == "ServiceAccountNotFound" and account:
            self.store.waiting_for_account[(record.namespace, account)].add(key)
        # A recovered issuer forgives the backoff once (see wake_after_recovery).
        forgiven = decision.respects_backoff and key in self._skip_backoff
        retry_at = None if forgiven else outcome.backoff_until(record, self.settings.backoff)
        wait = outcome.pace(decision, admitted=admitted, retry_at=retry_at, now=now)
        if wait is not None:
            self.queue.schedule(key, wait.at, limited=wait.limited)
            return
        if forgiven:
            self._skip_backoff.discard(key)
        try:
            await self._act(inputs, decision, now)
        except kube.ConflictError:
            await self._refetch_secret(record)
        except (kube.KubeError, errors.PKIError) as err:
            if isinstance(err, kube.KubeError) and kube.is_transient(err):
                raise  # not the Certificate's failure: the worker retries it soon
            failure = readiness.failure(f"issuance failed: {err}")
            await self._apply(record, self._outcome(inputs, failure, now))

    def _outcome(
        self,
        inputs: readiness.Inputs,
        decision: readiness.Decision,
        now: datetime,
        written: outcome.Issuance | None = None,
    ) -> outcome.Outcome:
        return outcome.of(
            inputs.certificate,
            decision,
            secret=inputs.secret,
            issuer=inputs.issuer.runtime if inputs.issuer else None,
            now=now,
            issuance=written,
            backoff=self.settings.backoff,
        )

    async def _act(
        self, inputs: readiness.Inputs, decision: readiness.Decision, now: datetime
    ) -> None:
        """Carries out a decision: issue, refresh the bundle, or apply its outcome."""
        record, issuer, secret = inputs.certificate, inputs.issuer, inputs.secret
        if await self._conflict_cleared(record, decision, now):
            return
        if decision.action == "issue":
            assert issuer is not None  # noqa: S101 -- decide() blocks without an issuer
            written = await self._issue(record, issuer, secret, now)
            await self._apply(record, self._outcome(inputs, decision, now, written))
        elif decision.action == "update-bundle":
            assert issuer is not None  # noqa: S101 -- decide() checked both
            assert secret is not None  # noqa: S101
            await self._refresh_bundle(record, issuer, secret)
        else:
            await self._apply(record, self._outcome(inputs, decision, now))

    async def _apply(self, record: state.CertificateRecord, result: outcome.Outcome) -> None:
        """Carries out an outcome: counts, logs, the wake-up, the status patch, the Events."""
        issuer = record.issuer_key
        for update in result.metrics:
            if isinstance(update, outcome.Denied):
                metrics.POLICY_DENIALS.labels(reason=update.rule).inc()
            else:
                metrics.observe_issuance(
                    issuer.name if issuer else "",
                    issuer.kind if issuer else "",
                    update.result,
                    update.seconds,
                )
        for line in result.logs:
            log.log(line.level, line.message, extra=log_fields(record, line.reason))
        if result.wake is not None:  # first: a failed status patch must not lose a renewal
            self.queue.schedule(record.key, result.wake.at, limited=result.wake.limited)
        await self._patch_status(record, result.status)
        for event in result.events:
            self.sink.post(record.reference(), event.type, event.reason, event.message)

    async def _patch_status(
        self, record: state.CertificateRecord, desired: status.CertificateStatus
    ) -> None:
        """Patches the fields of ``desired`` that differ; nothing when none does."""
        changes = status.patch(record.status, desired)
        if not changes:
            return
        try:
            result = await self.api.patch_status(
                "Certificate", record.namespace, record.name, changes
            )
        except kube.NotFoundError:
            return  # deleted meanwhile
        self.store.set_certificate_status(
            record, status.CertificateStatus.parse(result.get("status"))
        )
        record.resource_version = str((result.get("metadata") or {}).get("resourceVersion", ""))

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
            self.queue.add(record.key)
            return True
        self.store.secrets[store_key] = fresh
        checks = self._conflict_rechecks.get(record.key, 0)
        self._conflict_rechecks[record.key] = checks + 1
        delay = min(timedelta(seconds=2 ** min(checks, 10)), CONFLICT_RECHECK_CAP)
        self.queue.schedule(record.key, now + delay, limited=False)
        return False

    # Issuance --------------------------------------------------------------------------
    async def _issue(
        self,
        record: state.CertificateRecord,
        issuer: state.IssuerRecord,
        secret: secret_format.SecretState | None,
        now: datetime,
    ) -> outcome.Issuance:
        """Signs a new leaf and writes the Secret (the commit point).

        Raises:
            KubeError: A read or the write failed (ConflictError: the store was stale).
            PKIError: The PKI core refused the request.
        """
        started = time.perf_counter()
        spec, issuer_spec = record.spec, issuer.spec
        assert spec is not None  # noqa: S101 -- decided above
        assert issuer_spec is not None  # noqa: S101
        private_key = await self._private_key(record, spec, secret)
        request = issuance.leaf_request(
            spec,
            issuer_spec,
            record.namespace,
            private_key.public_key(),
            policy.effective_duration(issuer_spec.policy, spec),
            claims_oid=self.settings.claims_oid,
        )
        signer: pki_ca.CertificateAuthority | keys.PrivateKey = issuer.runtime.signer or private_key
        signing_key = (
            signer.private_key if isinstance(signer, pki_ca.CertificateAuthority) else signer
        )
        issued = await _compute(_is_rsa(signing_key), issuing.issue, request, signer, now)
        revision = max(secret.revision if secret else 0, record.status.revision or 0)
        content = secret_format.SecretContent(
            namespace=record.namespace,
            certificate_name=record.name,
            certificate_uid=record.uid,
            spec=spec,
            spec_hash=record.spec_hash,
            issued=issued,
            private_key=private_key,
            bundle_pem=issuer.runtime.bundle_pem or issued.certificate_pem,
            identity=str(request.spiffe_id or ""),
            revision=revision + 1,
            renew_request=record.renew_request,
            pkcs12_password=await self._pkcs12_password(record, spec),
        )
        written = await self._write_secret(content, secret)
        return outcome.Issuance(
            secret=written,
            identity=content.identity,
            clamped=issued.clamped,
            replaced=secret is not None,
            seconds=time.perf_counter() - started,
            leaf=issued.certificate,
            signer_fingerprint=issuer.runtime.signer.fingerprint_sha256
            if issuer.runtime.signer
            else None,
        )

    async def _write_secret(
        self, content: secret_format.SecretContent, secret: secret_format.SecretState | None
    ) -> secret_format.SecretState:
        """Creates or replaces the Secret; the store keeps what was written."""
        namespace, name = content.namespace, content.spec.secret_name
        if secret is None:
            body = await self.api.create_secret(namespace, secret_format.secret_body(content))
        else:
            body = await self.api.replace_secret(
                namespace,
                name,
                secret_format.secret_body(
                    content, resource_version=secret.resource_version, kept=secret
                ),
            )
        written = secret_format.written_secret(body, content)
        self.store.secrets[(namespace, name)] = written
        return written

    async def _private_key(
        self,
        record: state.CertificateRecord,
        spec: certificate_types.CertificateSpec,
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
        rsa = wanted.algorithm is keys.KeyAlgorithm.RSA
        return await _compute(rsa, keys.generate_private_key, wanted)

    async def _pkcs12_password(
        self, record: state.CertificateRecord, spec: certificate_types.CertificateSpec
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
        if body is None or labels.get(resources.LABEL_CERTIFICATE_NAME) != record.name:
            # Gone, or no longer this Certificate's: decide again from what is there now.
            await self._refetch_secret(record)
            return
        updated = secret_format.with_bundle(body, issuer.runtime.bundle_pem)
        written = await self.api.replace_secret(record.namespace, secret.name, updated)
        self.store.secrets[(record.namespace, secret.name)] = secret_format.read_secret(written)
        log.info("updated ca.crt", extra=log_fields(record, "TrustBundleChanged"))
        self.queue.add(record.key)

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
        self.queue.add(record.key)

    # Deletion --------------------------------------------------------------------------
    async def delete_secret_of(self, record: state.CertificateRecord) -> None:
        """Carries out ``secretDeletionPolicy: Delete`` for a deleted Certificate."""
        if record.spec is None or record.spec.secret_deletion_policy != "Delete":  # noqa: S105
            return
        secret = self.store.secrets.get((record.namespace, record.spec.secret_name))
        if secret is None or secret.owner != record.name:
            return
        if secret.annotations.get(resources.ANNOTATION_CERTIFICATE_UID, record.uid) != record.uid:
            return
        await self.api.delete_secret(record.namespace, secret.name, uid=secret.uid)
        log.info(
            "deleted Secret %s with its Certificate",
            secret.name,
            extra=log_fields(record, "Deleted"),
        )

    async def sweep_orphaned_secrets(self) -> None:
        """Deletes Secrets whose Delete-policy Certificate went away while nobody led.

        Only Secrets certmint issued (labelled), annotated ``Delete``, whose Certificate is
        absent from a fully synced store.
        """
        for (namespace, name), secret in list(self.store.secrets.items()):
            policy_ = secret.annotations.get(resources.ANNOTATION_DELETION_POLICY)
            if secret.owner is None or policy_ != "Delete":
                continue
            if state.CertificateKey(namespace, secret.owner) in self.store.certificates:
                continue
            await self.api.delete_secret(namespace, name, uid=secret.uid)
            log.info(
                "deleted Secret %s: its Certificate %s is gone", name, secret.owner,
                extra={"namespace": namespace, "certificate": secret.owner, "reason": "Deleted"},
            )  # fmt: skip


_T = TypeVar("_T")
_Args = TypeVarTuple("_Args")


def _is_rsa(key: keys.PrivateKey) -> bool:
    return keys.key_spec_of(key).algorithm is keys.KeyAlgorithm.RSA


async def _compute(slow: bool, work: Callable[[*_Args], _T], *args: *_Args) -> _T:
    """Runs CPU work: in the thread pool when ``slow`` (RSA), else on the event loop.

    ECDSA and Ed25519 keys and signatures take a fraction of a millisecond, less than the
    hop to a thread and back; RSA key generation takes tens of milliseconds and must not
    stall the loop.
    """
    if slow:
        return await asyncio.get_running_loop().run_in_executor(None, work, *args)
    return work(*args)
