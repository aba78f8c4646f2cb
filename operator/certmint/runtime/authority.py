"""An issuer's CA: read its Secrets, let `rotation_plan.plan` decide, perform the writes.

The Secrets (``S``, ``S-next``, ``S-previous``) are described in `certmint.core.ca_secret`,
the decisions in `certmint.core.rotation_plan`. This module decides nothing: it reads,
plans, writes what the plan says, and reads again until the plan asks for no write.

Previous roots themselves (certificates, not keys) are kept in the issuer status, so a
user who replaces ``S`` by hand gets the same overlap: the old root stays trusted until
the last leaf it signed has expired, and every leaf is re-issued under the new CA.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from certmint.core import ca_secret, rotation, rotation_actions, rotation_plan, state
from certmint.k8s import kube
from certmint.pki import ca as pki_ca
from certmint.pki import decode, keys

log = logging.getLogger("certmint.authority")


Event = rotation_actions.Event
#: Passes of read, plan, write in one reconcile. The longest chain is create the CA,
#: prepare the next one, activate it (both at once when the CA expired or an emergency
#: was requested), retire a previous key: a plan still asking for writes after this
#: many is logged and finished at the next issuer resync.
MAX_PASSES = 6


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What `Authority.reconcile` established about an issuer.

    Attributes:
        runtime: Readiness, signer and bundle for the certificate reconciler.
        roots: The trust bundle with roles, for the status.
        rotation: ``status.rotation``, None when no rotation is under way.
        events: Events to post about the issuer.
    """

    runtime: state.IssuerRuntime
    roots: tuple[rotation.Root, ...] = ()
    rotation: dict[str, Any] | None = None
    events: tuple[Event, ...] = ()


def _tls_body(
    namespace: str, name: str, data: Mapping[str, str], annotations: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations)},
        "data": dict(data),
    }


def _ca_data(authority: pki_ca.CertificateAuthority) -> dict[str, str]:
    chain = decode.certificates_to_pem((authority.certificate, *authority.chain))
    return {
        "tls.crt": base64.b64encode(chain).decode(),
        "tls.key": base64.b64encode(keys.private_key_to_pem(authority.private_key)).decode(),
    }


class Authority:
    """Loads and rotates issuers' CAs through the API."""

    def __init__(self, api: kube.Kube, operator_namespace: str) -> None:
        self.api = api
        self.operator_namespace = operator_namespace
        #: The rotate request last refused per issuer, so the refusal is posted once.
        self._refused: dict[state.IssuerKey, str] = {}

    async def reconcile(
        self, record: state.IssuerRecord, now: datetime, *, manage: bool = True
    ) -> Outcome:
        """Reads the issuer's CA and, when ``manage``, performs its plan (generate, rotate).

        Without ``manage`` (a ClusterIssuer another shard manages) nothing is written and
        no Event announced: the outcome is what the CA Secrets say now.
        """
        spec = record.spec
        if spec is None:
            return Outcome(state.IssuerRuntime(False, "InvalidSpec", str(record.spec_error)))
        if spec.self_signed:
            return Outcome(
                state.IssuerRuntime(
                    True, "SelfSigned", "certificates are signed by their own private keys"
                )
            )
        events: list[Event] = []
        decided = rotation_plan.plan(given := await self._read(record, now), now)
        for _ in range(MAX_PASSES):
            if not decided.actions or not manage:
                break
            events.extend(await self._perform(given.namespace, decided.actions, now))
            decided = rotation_plan.plan(given := await self._read(record, now), now)
        if not manage:
            return Outcome(decided.runtime, decided.roots, decided.rotation, ())
        if decided.actions:
            log.warning("the CA of %s %s is not settled yet", record.kind, record.name)
        for warning in decided.warnings:
            log.warning(warning)
        if decided.refused:
            self._refused[record.key] = decided.refused
        return Outcome(decided.runtime, decided.roots, decided.rotation, (*events, *decided.events))

    async def _read(self, record: state.IssuerRecord, now: datetime) -> rotation_plan.State:
        """Gathers what `rotation_plan.plan` needs: the CA Secrets and the issuer's settings.

        ``S-next`` and ``S-previous`` are read only for a CA certmint generated.
        """
        assert record.spec is not None  # noqa: S101 -- reconcile returned before
        assert record.spec.ca is not None  # noqa: S101 -- the model guarantees ca or selfSigned
        ca = record.spec.ca
        namespace = record.namespace or self.operator_namespace
        owner = ca_secret.owner_mark(record.kind, record.name)

        async def read(name: str) -> ca_secret.CASecret | None:
            return ca_secret.read(await self.api.get_secret(namespace, name), owner, now)

        main = await read(ca.secret_name)
        rotated = ca.generate is not None and main is not None and main.generated
        return rotation_plan.State(
            kind=record.kind,
            issuer=record.name,
            namespace=namespace,
            secret_name=ca.secret_name,
            generate=ca.generate,
            longest_leaf=record.spec.policy.max_duration,
            main=main,
            next=await read(ca.secret_name + ca_secret.NEXT_SUFFIX) if rotated else None,
            previous=await read(ca.secret_name + ca_secret.PREVIOUS_SUFFIX) if rotated else None,
            known=tuple(rotation.from_status(record.status.get("trustBundle") or ())),
            request=record.rotate_request,
            emergency=record.rotate_emergency,
            refused=self._refused.get(record.key, ""),
        )

    async def _perform(
        self, namespace: str, actions: tuple[rotation_actions.Action, ...], now: datetime
    ) -> list[Event]:
        """Performs a plan's writes in order; returns the Events they announce.

        A write that conflicts with a change made since the read ends the pass: the next
        pass reads that change and plans again.
        """
        events: list[Event] = []
        try:
            for action in actions:
                events.extend(await self._write(namespace, action, now))
        except kube.ConflictError as err:
            log.info("CA Secrets of namespace %s changed while writing: %s", namespace, err)
        return events

    async def _write(
        self, namespace: str, action: rotation_actions.Action, now: datetime
    ) -> list[Event]:
        if isinstance(action, rotation_actions.CreateCA):  # PrepareNext too
            authority = rotation_actions.new_ca(action.generate, now)
            body = _tls_body(namespace, action.secret_name, _ca_data(authority), action.annotations)
            await self.api.create_secret(namespace, body)
            return [action.announce(namespace, authority)]
        if isinstance(action, rotation_actions.ActivateNext):
            await self._activate(namespace, action)
        elif isinstance(action, rotation_actions.DiscardNext):
            log.info("deleting %s/%s: %s", namespace, action.secret.name, action.why)
            await self.api.delete_secret(namespace, action.secret.name, uid=action.secret.uid)
        else:
            await self.api.delete_secret(namespace, action.secret.name, uid=action.secret.uid)
        return []

    async def _activate(self, namespace: str, action: rotation_actions.ActivateNext) -> None:
        """Keeps the current CA in ``S-previous``, promotes ``S-next``, deletes it."""
        current, upcoming = action.main, action.next
        kept = _tls_body(namespace, action.previous_name, current.data, current.annotations)
        if action.previous is None:
            await self.api.create_secret(namespace, kept)
        else:
            kept["metadata"]["resourceVersion"] = action.previous.resource_version
            await self.api.replace_secret(namespace, action.previous_name, kept)
        metadata = {**(current.body.get("metadata") or {}), "annotations": dict(action.annotations)}
        promoted = {**current.body, "metadata": metadata, "data": dict(upcoming.data)}
        await self.api.replace_secret(namespace, current.name, promoted)
        await self.api.delete_secret(namespace, upcoming.name, uid=upcoming.uid)
