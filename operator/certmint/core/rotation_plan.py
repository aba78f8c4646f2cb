"""CA rotation as a plan: from an issuer's CA Secrets as read, the writes that move it on.

`plan` is pure. The executor (`certmint.runtime.authority`) reads the Secrets, calls it,
performs its actions and reads again until a plan asks for nothing more. Each pass is
what a freshly restarted operator would do, so a crash between two writes resumes where
it stopped. The last plan also says what the issuer is: ready or not, the CA that signs,
the trust bundle with roles, ``status.rotation`` and the Events to post.

A user-managed CA (no ``generate``, or a Secret certmint did not generate) is only
observed: when its root differs from the current root of the status, the user replaced
it, and the old root stays in the bundle as ``previous`` until ``retainUntil``. A
generated CA moves through these steps, the first that applies winning:

1. its Secret is missing: create it;
2. ``S-next`` is left over from an activation, or unusable: discard it;
3. the current CA cannot sign (expired, not yet valid): activate ``S-next`` at once,
   preparing one first if there is none (nothing valid chains to the old root);
4. a rotation is due (``prepareBeforePercentage``) or requested: prepare ``S-next``;
5. the schedule's activation time has come, or the current CA expires before it, or an
   emergency was requested: activate (an emergency distrusts every older root);
6. the last previous root left the bundle: delete its key, ``S-previous``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from certmint.api import issuer_types, resources
from certmint.core import ca_secret, rotation, rotation_actions, state, status
from certmint.pki import ca as pki_ca
from certmint.pki import decode

#: Problems of a generated current CA that a new CA cures: nothing valid chains to it.
RECOVERABLE = frozenset({"CAExpired", "CANotYetValid"})


@dataclasses.dataclass(frozen=True)
class State:
    """What the executor read about one issuer's CA.

    Attributes:
        kind: Issuer or ClusterIssuer.
        issuer: The issuer's name.
        namespace: Where its CA Secrets live.
        secret_name: ``spec.ca.secretName``.
        generate: ``spec.ca.generate``; None for a user-managed CA.
        longest_leaf: ``policy.maxDuration``: no leaf lives longer.
        main: The CA Secret; None when missing.
        next: ``<secretName>-next``; read only for a generated CA.
        previous: ``<secretName>-previous``; read only for a generated CA.
        known: ``status.trustBundle`` as last written.
        request: The issuer's rotate request (``certmint rotate-ca``), empty when none.
        emergency: The request asks to distrust every older root at once.
        refused: The request already refused (the refusal is posted once).
    """

    kind: str
    issuer: str
    namespace: str
    secret_name: str
    generate: issuer_types.GenerateSpec | None
    longest_leaf: timedelta
    main: ca_secret.CASecret | None
    next: ca_secret.CASecret | None = None
    previous: ca_secret.CASecret | None = None
    known: tuple[rotation.Root, ...] = ()
    request: str = ""
    emergency: bool = False
    refused: str = ""

    @property
    def owner(self) -> str:
        return ca_secret.owner_mark(self.kind, self.issuer)

    def not_generated(self, name: str) -> str:
        return ca_secret.not_generated(self.namespace, name, self.kind, self.issuer)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to write, and what the issuer is once nothing more is to be written.

    Attributes:
        runtime: Readiness, signer and bundle.
        actions: The writes to perform, in order; empty when the CA is settled.
        roots: The trust bundle with roles, for the status.
        rotation: ``status.rotation``; None when no rotation is under way.
        events: Events about what was observed (not about ``actions``: those announce
            themselves once performed).
        refused: The rotate request this plan refused (to remember, not to refuse again).
        warnings: Log lines for what blocks a rotation without being an rotation_actions.Event.
    """

    runtime: state.IssuerRuntime
    actions: tuple[rotation_actions.Action, ...] = ()
    roots: tuple[rotation.Root, ...] = ()
    rotation: dict[str, Any] | None = None
    events: tuple[rotation_actions.Event, ...] = ()
    refused: str = ""
    warnings: tuple[str, ...] = ()

    def then(self, *actions: rotation_actions.Action) -> Plan:
        return dataclasses.replace(self, actions=(*self.actions, *actions))

    def noting(self, *events: rotation_actions.Event) -> Plan:
        return dataclasses.replace(self, events=(*self.events, *events))


def plan(given: State, now: datetime) -> Plan:
    """Decides the next writes of an issuer's CA, and what the issuer is.

    Args:
        given: The CA Secrets and the issuer's rotation settings, as read.
        now: The current time.

    Returns:
        The plan: an action per write, in order, and the outcome if nothing is written.
    """
    main, generate = given.main, given.generate
    if main is None:
        missing = _not_ready(
            "CASecretMissing",
            f'CA Secret "{given.namespace}/{given.secret_name}" does not exist: create a '
            "kubernetes.io/tls Secret with tls.crt and tls.key, or set spec.ca.generate",
        )
        if generate is None:
            return missing
        mark = {resources.ANNOTATION_GENERATED_FOR: given.owner}
        return missing.then(rotation_actions.CreateCA(given.secret_name, generate, mark))
    if generate is None:
        return _settled(given, main, now)
    if not main.generated:
        return _refuse(given, _settled(given, main, now))
    chosen = _rotate(given, main, generate, now)
    return chosen if chosen.actions else _retire_previous_key(given, main, chosen)


def _rotate(
    given: State, main: ca_secret.CASecret, generate: issuer_types.GenerateSpec, now: datetime
) -> Plan:
    """Steps 2 to 5 for a generated CA (see the module docstring)."""
    upcoming = given.next
    if upcoming is not None and not upcoming.generated:
        warning = f"not rotating: {given.not_generated(upcoming.name)}"
        return dataclasses.replace(_settled(given, main, now), warnings=(warning,))
    if upcoming is not None and (discard := _discard_reason(main, upcoming)):
        return _settled(given, main, now).then(rotation_actions.DiscardNext(upcoming, discard))
    if main.ca is None:
        return _recover(given, main, generate, now)
    requested = _requested(given, main)
    due = now >= rotation.prepare_time(main.ca.root, generate.prepare_before_percentage)
    if upcoming is None and (requested or due):
        return _settled(given, main, now).then(
            _prepare(given, main.ca, generate, now, requested=requested)
        )
    if upcoming is None:
        return _settled(given, main, now)
    return _prepared(given, main, upcoming, generate, now)


def _prepared(
    given: State,
    main: ca_secret.CASecret,
    upcoming: ca_secret.CASecret,
    generate: issuer_types.GenerateSpec,
    now: datetime,
) -> Plan:
    """Step 5: a prepared rotation activates when its time has come."""
    assert main.ca is not None  # noqa: S101 -- step 3 handles a current CA that cannot sign
    assert upcoming.ca is not None  # noqa: S101 -- step 2 discards an unusable next CA
    schedule, activate_after = _schedule(given, main.ca, upcoming, generate)
    settled = _settled(given, main, now, upcoming.ca, schedule)
    if now < activate_after and not (_requested(given, main) and given.emergency):
        return settled
    return _activate(given, main, upcoming, settled)


def _discard_reason(main: ca_secret.CASecret, upcoming: ca_secret.CASecret) -> str:
    if upcoming.ca is None:
        return f"the next CA cannot be used: {upcoming.problem}"
    if main.ca is not None and upcoming.ca.fingerprint_sha256 == main.ca.fingerprint_sha256:
        return "an activation finished except for this clean-up"
    return ""


def _recover(
    given: State, main: ca_secret.CASecret, generate: issuer_types.GenerateSpec, now: datetime
) -> Plan:
    """Step 3: a generated current CA that cannot sign is replaced at once, when a new
    CA cures its problem (an invalid or mismatched Secret is left for a human)."""
    unusable = _settled(given, main, now)
    if main.problem is None or main.problem.reason not in RECOVERABLE:
        return unusable
    if given.next is None:
        why = f"now: the current CA cannot sign, {main.problem.message}"
        annotations = _schedule_annotations(given, now, now, requested=False)
        next_name = given.secret_name + ca_secret.NEXT_SUFFIX
        return unusable.then(
            rotation_actions.PrepareNext(
                next_name, generate, annotations, activate_after=now, why=why
            )
        )
    return _activate(given, main, given.next, unusable)


def _requested(given: State, main: ca_secret.CASecret) -> bool:
    """A rotate request that no activation has satisfied yet."""
    satisfied = main.annotations.get(resources.ANNOTATION_ROTATE_REQUEST)
    return bool(given.request) and given.request != satisfied


def _prepare(
    given: State,
    current: pki_ca.CertificateAuthority,
    generate: issuer_types.GenerateSpec,
    now: datetime,
    *,
    requested: bool,
) -> rotation_actions.PrepareNext:
    activate_after = rotation.activate_time(
        current.root,
        now,
        given.longest_leaf,
        generate.activate_before_percentage,
        requested=requested,
    )
    return rotation_actions.PrepareNext(
        given.secret_name + ca_secret.NEXT_SUFFIX,
        generate,
        _schedule_annotations(given, now, activate_after, requested=requested),
        activate_after=activate_after,
        why="requested" if requested else "scheduled",
    )


def _schedule_annotations(
    given: State, prepared_at: datetime, activate_after: datetime, *, requested: bool
) -> dict[str, str]:
    """The next CA's annotations: its owner, and the schedule a restart resumes from."""
    annotations = {
        resources.ANNOTATION_GENERATED_FOR: given.owner,
        resources.ANNOTATION_PREPARED_AT: status.timestamp(prepared_at),
        resources.ANNOTATION_ACTIVATE_AFTER: status.timestamp(activate_after),
        resources.ANNOTATION_ROTATION_REASON: "Requested" if requested else "Scheduled",
    }
    if requested:
        annotations[resources.ANNOTATION_ROTATE_REQUEST] = given.request
    return annotations


def _schedule(
    given: State,
    current: pki_ca.CertificateAuthority,
    upcoming: ca_secret.CASecret,
    generate: issuer_types.GenerateSpec,
) -> tuple[dict[str, Any], datetime]:
    """``status.rotation`` of a prepared rotation, and when it activates.

    The schedule is read back from the next CA's annotations. Activation never waits
    past the current CA's notAfter: after it the current CA signs nothing at all.
    """
    assert upcoming.ca is not None  # noqa: S101 -- only a usable next CA has a schedule
    annotations = upcoming.annotations
    prepared_at = (
        status.parse_timestamp(annotations.get(resources.ANNOTATION_PREPARED_AT))
        or upcoming.ca.not_before
    )
    activate_after = status.parse_timestamp(
        annotations.get(resources.ANNOTATION_ACTIVATE_AFTER)
    ) or rotation.activate_time(
        current.root,
        prepared_at,
        given.longest_leaf,
        generate.activate_before_percentage,
        requested=False,
    )
    activate_after = min(activate_after, current.not_after)
    schedule = {
        "phase": "Prepared",
        "reason": annotations.get(resources.ANNOTATION_ROTATION_REASON, "Scheduled"),
        "preparedAt": status.timestamp(prepared_at),
        "activateAfter": status.timestamp(activate_after),
    }
    return schedule, activate_after


def _activate(
    given: State, main: ca_secret.CASecret, upcoming: ca_secret.CASecret, settled: Plan
) -> Plan:
    """Step 5: activation, unless a Secret certmint did not generate holds its place."""
    kept = given.previous
    if kept is not None and not kept.generated:
        message = given.not_generated(kept.name)
        return settled.noting(("Warning", "CARotationBlocked", f"{message}; delete or rename it"))
    requested = _requested(given, main)
    annotations = {
        **main.annotations,
        **upcoming.annotations,
        **({resources.ANNOTATION_ROTATE_REQUEST: given.request} if requested else {}),
        resources.ANNOTATION_DISTRUSTS_OLDER: "true" if requested and given.emergency else "false",
    }
    previous_name = given.secret_name + ca_secret.PREVIOUS_SUFFIX
    return settled.then(
        rotation_actions.ActivateNext(main, upcoming, kept, previous_name, annotations)
    )


def _retire_previous_key(given: State, main: ca_secret.CASecret, settled: Plan) -> Plan:
    """Step 6. After an emergency the old key is kept for forensics: a human deletes it."""
    kept = given.previous
    was_listed = any(root.role == "previous" for root in given.known)
    still_listed = any(root.role == "previous" for root in settled.roots)
    if (
        kept is None
        or not kept.generated
        or main.distrusts_older
        or not was_listed
        or still_listed
        or not settled.runtime.ready
    ):
        return settled
    return settled.then(rotation_actions.RetirePrevious(kept))


def _refuse(given: State, settled: Plan) -> Plan:
    """A rotate request for a CA certmint did not generate: refused once, with an Event."""
    if not given.request or given.refused == given.request or not settled.runtime.ready:
        return settled
    message = (
        f"{given.not_generated(given.secret_name)}; replace its tls.crt and tls.key "
        "yourself (the old root stays trusted, see docs/ca-rotation.md)"
    )
    refused = settled.noting(("Warning", "CARotationRefused", message))
    return dataclasses.replace(refused, refused=given.request)


def _settled(
    given: State,
    main: ca_secret.CASecret,
    now: datetime,
    upcoming: pki_ca.CertificateAuthority | None = None,
    schedule: dict[str, Any] | None = None,
) -> Plan:
    """The issuer signing with ``main``, ``upcoming`` published as next."""
    current = main.ca
    if current is None:
        problem = main.problem
        reason = problem.reason if problem is not None else "CAInvalid"
        return _not_ready(reason, f'CA Secret "{given.namespace}/{main.name}": {problem}')
    previous, events = _previous_roots(given, main, current, now)
    roots = rotation.ordered(
        [
            *previous,
            rotation.Root("current", current.root),
            *([rotation.Root("next", upcoming.root)] if upcoming is not None else []),
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
    return Plan(runtime, roots=tuple(roots), rotation=schedule, events=events)


def _previous_roots(
    given: State,
    main: ca_secret.CASecret,
    current: pki_ca.CertificateAuthority,
    now: datetime,
) -> tuple[list[rotation.Root], tuple[rotation_actions.Event, ...]]:
    """The previous roots still trusted, and the Event when the current root just changed.

    A current root that differs from the status's was replaced, by an activation or by
    the user: it stays as previous until its last leaf has expired, unless the new CA
    was promoted by an emergency rotation, which distrusts every older root.
    """
    live = rotation.live_previous(given.known, now)
    replaced = next((root for root in given.known if root.role == "current"), None)
    if replaced is None or decode.fingerprint_sha256(
        replaced.certificate
    ) == decode.fingerprint_sha256(current.root):
        return live, ()
    if main.distrusts_older:
        return [], (_emergency_event(current),)
    until = rotation.retain_until(replaced.certificate, now, given.longest_leaf)
    kept = rotation.live_previous([rotation.Root("previous", replaced.certificate, until)], now)
    return [*live, *kept], (_rotated_event(current, until if kept else None),)


def _rotated_event(
    current: pki_ca.CertificateAuthority, until: datetime | None
) -> rotation_actions.Event:
    kept = (
        f"the previous root stays trusted until {status.timestamp(until)}"
        if until is not None
        else "the previous root had expired and leaves the bundle"
    )
    return (
        "Normal",
        "CARotated",
        f"now signing with CA {current.subject} ({current.fingerprint_sha256[:16]}); every "
        f"leaf is re-issued, and {kept}",
    )


def _emergency_event(current: pki_ca.CertificateAuthority) -> rotation_actions.Event:
    return (
        "Warning",
        "CARotatedEmergency",
        f"emergency rotation: now signing with CA {current.subject} "
        f"({current.fingerprint_sha256[:16]}); older roots are no longer trusted and every "
        "leaf is re-issued",
    )


def _not_ready(reason: str, message: str) -> Plan:
    return Plan(state.IssuerRuntime(False, reason, message))
