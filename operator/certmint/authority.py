"""An issuer's CA: load it, generate it, rotate it, and compute its trust bundle.

Secrets, for ``spec.ca.secretName: S`` (in the issuer's namespace, or the operator's
for a ClusterIssuer):

- ``S``: the CA that signs now (``tls.crt``, ``tls.key``). certmint creates it from
  ``spec.ca.generate`` when missing, and never overwrites a Secret it did not generate
  except to activate a rotation of a generated CA.
- ``S-next``: a generated CA's next CA, from prepare until activation. Its annotations
  carry the rotation's schedule, so a restart resumes it from what is stored.
- ``S-previous``: the replaced CA's key, kept until its root leaves the bundle.

Previous roots themselves (certificates, not keys) are kept in the issuer status, so a
user who replaces ``S`` by hand gets the same overlap: the old root stays trusted until
the last leaf it signed has expired, and every leaf is re-issued under the new CA.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from datetime import datetime
from typing import Any

from certmint import kube, model, rotation, state, status
from certmint.pki import ca as pki_ca
from certmint.pki import decode, errors, keys

log = logging.getLogger("certmint.authority")

ANNOTATION_GENERATED_FOR = "certmint.io/generated-for"
ANNOTATION_PREPARED_AT = "certmint.io/prepared-at"
ANNOTATION_ACTIVATE_AFTER = "certmint.io/activate-after"
ANNOTATION_ROTATION_REASON = "certmint.io/rotation-reason"
ANNOTATION_ROTATE_REQUEST = "certmint.io/rotate-requested-at"
#: With a rotate request: "true" activates at once and distrusts every older root.
ANNOTATION_ROTATE_EMERGENCY = "certmint.io/rotate-emergency"
#: On a CA Secret promoted by an emergency rotation: older roots are not kept.
ANNOTATION_DISTRUSTS_OLDER = "certmint.io/distrusts-older-roots"

Event = tuple[str, str, str]  # type, reason, message


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


def _not_ready(reason: str, message: str) -> Outcome:
    return Outcome(state.IssuerRuntime(False, reason, message))


def _tls_body(
    namespace: str, name: str, data: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "data": data,
    }


def _ca_data(authority: pki_ca.CertificateAuthority) -> dict[str, str]:
    chain = decode.certificates_to_pem((authority.certificate, *authority.chain))
    return {
        "tls.crt": base64.b64encode(chain).decode(),
        "tls.key": base64.b64encode(keys.private_key_to_pem(authority.private_key)).decode(),
    }


def _load(body: dict[str, Any], now: datetime) -> pki_ca.CertificateAuthority:
    data = body.get("data") or {}
    return pki_ca.load_ca(
        base64.b64decode(data.get("tls.crt", "")), base64.b64decode(data.get("tls.key", "")), now
    )


def _annotations(body: dict[str, Any] | None) -> dict[str, str]:
    return dict(((body or {}).get("metadata") or {}).get("annotations") or {})


class Authority:
    """Loads and rotates issuers' CAs through the API."""

    def __init__(self, api: kube.Kube, operator_namespace: str) -> None:
        self.api = api
        self.operator_namespace = operator_namespace

    async def reconcile(self, record: state.IssuerRecord, now: datetime) -> Outcome:
        spec = record.spec
        if spec is None:
            return _not_ready("InvalidSpec", str(record.spec_error))
        if spec.self_signed:
            return Outcome(
                state.IssuerRuntime(
                    True, "SelfSigned", "certificates are signed by their own private keys"
                )
            )
        assert spec.ca is not None  # noqa: S101 -- the model guarantees exactly one
        namespace = record.namespace or self.operator_namespace
        name = spec.ca.secret_name
        events: list[Event] = []
        main = await self.api.get_secret(namespace, name)
        if main is None and spec.ca.generate is not None:
            main = await self._generate(
                record=record,
                namespace=namespace,
                name=name,
                generate=spec.ca.generate,
                now=now,
                events=events,
            )
        if main is None:
            return _not_ready(
                "CASecretMissing",
                f'CA Secret "{namespace}/{name}" does not exist: create a kubernetes.io/tls '
                "Secret with tls.crt and tls.key, or set spec.ca.generate",
            )
        try:
            current = _load(main, now)
        except errors.CAError as err:
            return _not_ready(err.reason, f'CA Secret "{namespace}/{name}": {err}')

        longest_leaf = spec.policy.max_duration
        known = rotation.from_status(record.status.get("trustBundle") or ())
        previous = rotation.live_previous(known, now)
        known_current = next((root for root in known if root.role == "current"), None)
        distrusted = _annotations(main).get(ANNOTATION_DISTRUSTS_OLDER) == "true"
        if (
            known_current is not None
            and not distrusted
            and decode.fingerprint_sha256(known_current.certificate)
            != decode.fingerprint_sha256(current.root)
        ):
            until = rotation.retain_until(known_current.certificate, now, longest_leaf)
            previous.append(rotation.Root("previous", known_current.certificate, until))
            events.append(self._rotated_event(current, until))

        next_ca: pki_ca.CertificateAuthority | None = None
        schedule: dict[str, Any] | None = None
        if spec.ca.generate is not None:
            next_ca, schedule, current, main = await self._rotate_generated(
                record=record,
                namespace=namespace,
                name=name,
                generate=spec.ca.generate,
                main=main,
                current=current,
                previous=previous,
                now=now,
                events=events,
            )
        if (
            spec.ca.generate is not None
            and not previous
            and any(root.role == "previous" for root in known)
        ):
            # The last previous root left the bundle: its key is no longer needed.
            await self.api.delete_secret(namespace, f"{name}-previous")

        roots = rotation.ordered(
            [
                *previous,
                rotation.Root("current", current.root),
                *([rotation.Root("next", next_ca.root)] if next_ca else []),
            ]
        )
        runtime = state.IssuerRuntime(
            True,
            "CAReady",
            f"signing with CA {current.subject}, valid until {current.not_after.isoformat()}",
            signer=current,
            bundle=tuple(root.certificate for root in roots),
            bundle_pem=rotation.bundle_pem(roots),
        )
        return Outcome(runtime, tuple(roots), schedule, tuple(events))

    @staticmethod
    def _rotated_event(current: pki_ca.CertificateAuthority, until: datetime) -> Event:
        return (
            "Normal",
            "CARotated",
            f"now signing with CA {current.subject} ({current.fingerprint_sha256[:16]}); every "
            "leaf is re-issued, and the previous root stays trusted until "
            f"{status.timestamp(until)}",
        )

    async def _generate(
        self,
        *,
        record: state.IssuerRecord,
        namespace: str,
        name: str,
        generate: model.GenerateSpec,
        now: datetime,
        events: list[Event],
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """Creates a CA Secret with a new root; never overwrites an existing Secret."""
        authority = pki_ca.generate_root_ca(
            generate.common_name,
            generate.duration,
            keys.KeySpec(
                keys.KeyAlgorithm(generate.private_key.algorithm), generate.private_key.size
            ).normalized(),
            now,
        )
        body = _tls_body(
            namespace,
            name,
            _ca_data(authority),
            {ANNOTATION_GENERATED_FOR: f"{record.kind}/{record.name}", **(annotations or {})},
        )
        try:
            created: dict[str, Any] = await self.api.create_secret(namespace, body)
        except kube.ConflictError:
            return await self.api.get_secret(namespace, name)
        events.append(
            (
                "Normal",
                "CAGenerated",
                f'generated root CA "{generate.common_name}" '
                f"({authority.fingerprint_sha256[:16]}) into Secret {namespace}/{name}",
            )
        )
        return created

    async def _rotate_generated(
        self,
        *,
        record: state.IssuerRecord,
        namespace: str,
        name: str,
        generate: model.GenerateSpec,
        main: dict[str, Any],
        current: pki_ca.CertificateAuthority,
        previous: list[rotation.Root],
        now: datetime,
        events: list[Event],
    ) -> tuple[
        pki_ca.CertificateAuthority | None,
        dict[str, Any] | None,
        pki_ca.CertificateAuthority,
        dict[str, Any],
    ]:
        """Prepares and activates the rotation of a generated CA when it is due.

        Returns:
            The next CA (None when none is prepared), ``status.rotation``, and the
            current CA and its Secret (both new after an activation).
        """
        assert record.spec is not None  # noqa: S101
        longest_leaf = record.spec.policy.max_duration
        next_name = f"{name}-next"
        next_body = await self.api.get_secret(namespace, next_name)
        next_ca = None
        if next_body is not None:
            try:
                next_ca = _load(next_body, now)
            except errors.CAError as err:
                log.warning("ignoring unusable %s/%s: %s", namespace, next_name, err)
            if next_ca is not None and next_ca.fingerprint_sha256 == current.fingerprint_sha256:
                # An activation finished except for this clean-up.
                await self.api.delete_secret(namespace, next_name)
                next_ca, next_body = None, None

        request = record.rotate_request
        satisfied = {_annotations(main).get(ANNOTATION_ROTATE_REQUEST)}
        requested = bool(request) and request not in satisfied
        due = now >= rotation.prepare_time(current.root, generate.prepare_before_percentage)
        if next_body is None and (requested or due):
            reason = "Requested" if requested else "Scheduled"
            activate_after = rotation.activate_time(
                current.root,
                now,
                longest_leaf,
                generate.activate_before_percentage,
                requested=requested,
            )
            annotations = {
                ANNOTATION_PREPARED_AT: status.timestamp(now),
                ANNOTATION_ACTIVATE_AFTER: status.timestamp(activate_after),
                ANNOTATION_ROTATION_REASON: reason,
            }
            if requested:
                annotations[ANNOTATION_ROTATE_REQUEST] = request
            next_body = await self._generate(
                record=record,
                namespace=namespace,
                name=next_name,
                generate=generate,
                now=now,
                events=[],
                annotations=annotations,
            )
            next_ca = _load(next_body, now) if next_body else None
            if next_ca is not None:
                events.append(
                    (
                        "Normal",
                        "CARotationPrepared",
                        f"published the next root ({next_ca.fingerprint_sha256[:16]}) in the "
                        f"trust bundle; signing switches to it after "
                        f"{status.timestamp(activate_after)} ({reason.lower()})",
                    )
                )
        if next_ca is None or next_body is None:
            return None, None, current, main

        schedule_annotations = _annotations(next_body)
        prepared_at = (
            status.parse_timestamp(schedule_annotations.get(ANNOTATION_PREPARED_AT))
            or next_ca.not_before
        )
        activate_after = status.parse_timestamp(
            schedule_annotations.get(ANNOTATION_ACTIVATE_AFTER)
        ) or rotation.activate_time(
            current.root,
            prepared_at,
            longest_leaf,
            generate.activate_before_percentage,
            requested=False,
        )
        emergency = requested and record.rotate_emergency
        if now < activate_after and not emergency:
            schedule = {
                "phase": "Prepared",
                "reason": schedule_annotations.get(ANNOTATION_ROTATION_REASON, "Scheduled"),
                "preparedAt": status.timestamp(prepared_at),
                "activateAfter": status.timestamp(activate_after),
            }
            return next_ca, schedule, current, main

        main = await self._activate(
            namespace,
            name,
            main,
            next_body,
            satisfies=request if requested else None,
            emergency=emergency,
        )
        if emergency:
            # The old key may be compromised: no root older than the new one stays trusted.
            previous.clear()
            events.append(
                (
                    "Warning",
                    "CARotatedEmergency",
                    f"emergency rotation: now signing with CA {next_ca.subject} "
                    f"({next_ca.fingerprint_sha256[:16]}); older roots are no longer trusted "
                    "and every leaf is re-issued",
                )
            )
            return None, None, next_ca, main
        until = rotation.retain_until(current.root, now, longest_leaf)
        previous.append(rotation.Root("previous", current.root, until))
        events.append(self._rotated_event(next_ca, until))
        return None, None, next_ca, main

    async def _activate(
        self,
        namespace: str,
        name: str,
        main: dict[str, Any],
        next_body: dict[str, Any],
        *,
        satisfies: str | None,
        emergency: bool = False,
    ) -> dict[str, Any]:
        """Switches signing to the next CA: keep the old key, promote next, clean up.

        Each step is idempotent, so an interrupted activation completes on the next pass.
        """
        previous_name = f"{name}-previous"
        previous_body = _tls_body(
            namespace, previous_name, dict(main.get("data") or {}), _annotations(main)
        )
        existing = await self.api.get_secret(namespace, previous_name)
        if existing is None:
            await self.api.create_secret(namespace, previous_body)
        else:
            previous_body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            await self.api.replace_secret(namespace, previous_name, previous_body)
        promoted = {
            **main,
            "metadata": {
                **main["metadata"],
                "annotations": {
                    **_annotations(main),
                    **_annotations(next_body),
                    **({ANNOTATION_ROTATE_REQUEST: satisfies} if satisfies else {}),
                    ANNOTATION_DISTRUSTS_OLDER: "true" if emergency else "false",
                },
            },
            "data": dict(next_body.get("data") or {}),
        }
        replaced = await self.api.replace_secret(namespace, name, promoted)
        await self.api.delete_secret(namespace, f"{name}-next")
        return replaced
