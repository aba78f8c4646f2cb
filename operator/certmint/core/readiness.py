"""What should happen to a Certificate now: a pure decision, first answer wins.

Two ordered chains of small predicates, each returning a reason code and a message or
None. *Blockers* stop issuance (the reason becomes the Ready=False reason and the
Event reason); *triggers* say why a new certificate must be signed. ``now`` is passed
in, never read here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from cryptography import x509

from certmint.api import resources
from certmint.core import adoption, policy, secret_format, state
from certmint.pki import building, decode, renewal

Action = Literal["issue", "block", "ready", "update-bundle"]

#: Re-issues that are due to time or to a CA change rather than to a user's change: they
#: pass the renewal rate bound, so many at once (a restart after downtime, a CA rotation)
#: are spread out instead of signed in one burst.
RATE_BOUND = frozenset({"RenewalDue", "Expired", "IssuerCAChanged", "TrustBundleChanged"})

#: Blockers that clear by themselves (retried with backoff and counted as failures);
#: the others wait for the user or another object to change.
RETRYABLE = frozenset({"IssuerNotReady", "ServiceAccountNotFound"})

#: The Ready message of a certificate that needs nothing.
UP_TO_DATE = "the certificate is up to date and has not expired"


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of `decide`.

    Attributes:
        action: ``issue`` a new certificate, ``block`` (cannot proceed), ``ready``
            (nothing to do), or ``update-bundle`` (only ``ca.crt`` is stale).
        reason: CamelCase reason code.
        message: What is going on, for a human, saying what to change when blocked.
        denial: The policy rule that denied, for ``PolicyViolation``.
        final: Waits for a change of the spec or another object, whatever the reason says.
        renewal_time: For ``ready``: when the leaf in the Secret is due for renewal.
    """

    action: Action
    reason: str
    message: str
    denial: str = ""
    final: bool = False
    renewal_time: datetime | None = None

    @property
    def retryable(self) -> bool:
        return self.action == "block" and self.reason in RETRYABLE and not self.final

    @property
    def respects_backoff(self) -> bool:
        """Waits out the failure backoff: it would sign, or retry a failed attempt."""
        return self.action == "issue" or self.retryable

    @property
    def counts_as_failure(self) -> bool:
        """A failed attempt: retried with backoff and counted in ``failedIssuanceAttempts``."""
        return self.retryable or (self.action == "block" and self.reason == "Failed")


def failure(message: str) -> Decision:
    """The decision that stands for an issuance that failed with an error."""
    return Decision("block", "Failed", message)


@dataclasses.dataclass(frozen=True)  # no slots: `due` is cached on the instance
class Inputs:
    """Everything `decide` looks at."""

    certificate: state.CertificateRecord
    issuer: state.IssuerRecord | None
    secret: secret_format.SecretState | None
    service_account_exists: bool

    @functools.cached_property
    def due(self) -> datetime | None:
        """When the leaf in the Secret is due for renewal; None without a leaf."""
        leaf = self.secret.leaf if self.secret else None
        return None if leaf is None else renewal_time(self.certificate, leaf)


Check = Callable[[Inputs, datetime], "Decision | None"]


def renewal_time(record: state.CertificateRecord, leaf: x509.Certificate) -> datetime:
    """When the leaf in the Secret is due for renewal (jitter seeded per certificate)."""
    spec = record.spec
    return renewal.renewal_time(
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
        renew_before=spec.renew_before if spec else None,
        renew_before_percentage=spec.renew_before_percentage if spec else None,
        jitter_seed=f"{record.namespace}/{record.name}/{decode.serial_hex(leaf)}",
    )


def _block(reason: str, message: str, denial: str = "") -> Decision:
    return Decision("block", reason, message, denial)


def _issue(reason: str, message: str) -> Decision:
    return Decision("issue", reason, message)


# Blockers that apply whether or not a new certificate is needed ---------------------
def invalid_spec(inputs: Inputs, _: datetime) -> Decision | None:
    error = inputs.certificate.spec_error
    return None if error is None else _block("InvalidSpec", str(error))


def issuer_missing(inputs: Inputs, _: datetime) -> Decision | None:
    if inputs.issuer is not None:
        return None
    spec = inputs.certificate.spec
    assert spec is not None  # noqa: S101 -- invalid_spec runs first
    ref = spec.issuer_ref
    where = f' in namespace "{inputs.certificate.namespace}"' if ref.kind == "Issuer" else ""
    return _block("IssuerNotFound", f'{ref.kind} "{ref.name}" does not exist{where}')


def issuer_invalid(inputs: Inputs, _: datetime) -> Decision | None:
    issuer = inputs.issuer
    if issuer is None or issuer.spec_error is None:
        return None
    # Final: only an edit of the issuer helps, and that wakes its Certificates.
    return Decision(
        "block",
        "IssuerNotReady",
        f'{issuer.kind} "{issuer.name}" has an invalid spec: {issuer.spec_error}',
        final=True,
    )


def policy_denies(inputs: Inputs, _: datetime) -> Decision | None:
    issuer, record = inputs.issuer, inputs.certificate
    if issuer is None or issuer.spec is None or record.spec is None:
        return None
    denial = policy.evaluate(issuer.spec.policy, record.spec, namespace=record.namespace)
    if denial is None:
        return None
    return _block("PolicyViolation", f"{denial.reason}: {denial.message}", denial.reason)


def secret_conflict(inputs: Inputs, _: datetime) -> Decision | None:
    secret, record = inputs.secret, inputs.certificate
    if secret is None:
        return None
    adopt = record.spec.adopt_cert_manager_certificate if record.spec else None
    ownership = adoption.decide(record.name, adopt, secret.owner, secret.cert_manager_name)
    if ownership.writable:
        return None
    return _block(
        "SecretConflict",
        f'Secret "{secret.name}" already exists and {ownership.reason}; certmint never '
        "overwrites it. Choose another spec.secretName or delete that Secret.",
    )


ALWAYS: tuple[Check, ...] = (
    invalid_spec,
    issuer_missing,
    issuer_invalid,
    policy_denies,
    secret_conflict,
)


# Triggers: why a new certificate must be signed -------------------------------------
def secret_missing(inputs: Inputs, _: datetime) -> Decision | None:
    if inputs.secret is not None:
        return None
    name = inputs.certificate.spec.secret_name if inputs.certificate.spec else "?"
    return _issue("SecretMissing", f'Secret "{name}" does not exist')


def secret_adopted(inputs: Inputs, _: datetime) -> Decision | None:
    """A cert-manager Secret that secret_conflict let through: the first issuance replaces it."""
    secret = inputs.secret
    if secret is None or secret.owner is not None:
        return None
    return _issue(
        "SecretAdopted",
        f'taking over Secret "{secret.name}" from cert-manager Certificate '
        f'"{secret.cert_manager_name}"',
    )


def secret_unreadable(inputs: Inputs, _: datetime) -> Decision | None:
    if inputs.secret is None or inputs.secret.leaf is not None:
        return None
    return _issue("SecretInvalid", f'Secret "{inputs.secret.name}" holds no valid certificate')


def key_mismatch(inputs: Inputs, _: datetime) -> Decision | None:
    if inputs.secret is None or inputs.secret.key_matches:
        return None
    return _issue("KeyMismatch", "tls.key does not match the certificate in tls.crt")


def not_yet_valid(inputs: Inputs, now: datetime) -> Decision | None:
    """A leaf whose validity starts later than the clock-skew allowance is never Ready."""
    leaf = inputs.secret.leaf if inputs.secret else None
    if leaf is None or leaf.not_valid_before_utc <= now + building.CLOCK_SKEW_ALLOWANCE:
        return None
    return _issue(
        "NotYetValid",
        f"the certificate is only valid from {leaf.not_valid_before_utc.isoformat()}",
    )


def spec_changed(inputs: Inputs, _: datetime) -> Decision | None:
    secret = inputs.secret
    recorded = secret.annotations.get(resources.ANNOTATION_SPEC_HASH) if secret else None
    if recorded == inputs.certificate.spec_hash:
        return None
    return _issue(
        "SpecChanged",
        f"the spec changed (generation {inputs.certificate.generation}) since the last issuance",
    )


def renew_requested(inputs: Inputs, _: datetime) -> Decision | None:
    request = inputs.certificate.renew_request
    if not request or inputs.secret is None:
        return None
    if inputs.secret.annotations.get(resources.ANNOTATION_RENEW_REQUEST) == request:
        return None
    return _issue("RenewRequested", f"a re-issue was requested at {request}")


def issuer_ca_changed(inputs: Inputs, _: datetime) -> Decision | None:
    issuer, secret = inputs.issuer, inputs.secret
    if issuer is None or secret is None or secret.leaf is None:
        return None
    signer = issuer.runtime.signer
    if signer is None or not issuer.runtime.ready:
        return None
    if signed_by(secret.leaf, signer.certificate):
        return None
    return _issue(
        "IssuerCAChanged",
        f"the certificate was not signed by the issuer's current CA "
        f"({signer.fingerprint_sha256[:16]})",
    )


def expired(inputs: Inputs, now: datetime) -> Decision | None:
    leaf = inputs.secret.leaf if inputs.secret else None
    if leaf is None or now < leaf.not_valid_after_utc:
        return None
    return _issue("Expired", f"the certificate expired at {leaf.not_valid_after_utc.isoformat()}")


def renewal_due(inputs: Inputs, now: datetime) -> Decision | None:
    due = inputs.due
    if due is None or now < due:
        return None
    return _issue("RenewalDue", f"the renewal time {due.isoformat()} has passed")


TRIGGERS: tuple[Check, ...] = (
    secret_missing,
    secret_adopted,
    secret_unreadable,
    key_mismatch,
    not_yet_valid,
    spec_changed,
    renew_requested,
    issuer_ca_changed,
    expired,
    renewal_due,
)


# Blockers that only matter when a new certificate is needed -------------------------
def issuer_not_ready(inputs: Inputs, _: datetime) -> Decision | None:
    issuer = inputs.issuer
    if issuer is None or issuer.runtime.ready:
        return None
    return _block(
        "IssuerNotReady",
        f'{issuer.kind} "{issuer.name}" is not ready ({issuer.runtime.reason}): '
        f"{issuer.runtime.message}",
    )


def service_account_missing(inputs: Inputs, _: datetime) -> Decision | None:
    spec = inputs.certificate.spec
    if spec is None or not spec.service_account_name or inputs.service_account_exists:
        return None
    return _block(
        "ServiceAccountNotFound",
        f'ServiceAccount "{spec.service_account_name}" does not exist in namespace '
        f'"{inputs.certificate.namespace}"; create it or fix spec.serviceAccountName',
    )


BEFORE_ISSUING: tuple[Check, ...] = (issuer_not_ready, service_account_missing)


def signed_by(leaf: x509.Certificate, ca_certificate: x509.Certificate) -> bool:
    """Whether ``leaf`` names ``ca_certificate`` as its issuer (name and key identifier).

    This is a cheap identity check for scheduling, not a signature verification.
    """
    if leaf.issuer != ca_certificate.subject:
        return False
    try:
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return True
    return aki.key_identifier == ski.digest


def signing_ca_fingerprint(leaf: x509.Certificate, runtime: state.IssuerRuntime) -> str | None:
    """The fingerprint of the issuer's CA that signed ``leaf``: its signer or a bundle root."""
    if runtime.signer and signed_by(leaf, runtime.signer.certificate):
        return runtime.signer.fingerprint_sha256  # computed once per CA
    for candidate in runtime.bundle:
        if signed_by(leaf, candidate):
            return decode.fingerprint_sha256(candidate)
    return None


def _first(checks: tuple[Check, ...], inputs: Inputs, now: datetime) -> Decision | None:
    for check in checks:
        decision = check(inputs, now)
        if decision is not None:
            return decision
    return None


def decide(inputs: Inputs, now: datetime) -> Decision:
    """Decides what to do with a Certificate.

    Args:
        inputs: The Certificate, its issuer, its Secret and whether its ServiceAccount exists.
        now: The current time (aware).

    Returns:
        The first blocker, else the first trigger (unless a late blocker stops it),
        else ``update-bundle`` when only ``ca.crt`` is stale, else ``ready``.
    """
    blocked = _first(ALWAYS, inputs, now)
    if blocked is not None:
        return blocked
    trigger = _first(TRIGGERS, inputs, now)
    if trigger is None:
        issuer, secret = inputs.issuer, inputs.secret
        if (
            issuer is not None
            and secret is not None
            and issuer.runtime.ready
            and issuer.runtime.bundle_pem
            and secret.bundle_digest != issuer.runtime.bundle_digest
        ):
            return Decision("update-bundle", "TrustBundleChanged", "ca.crt is out of date")
        return Decision("ready", "Ready", UP_TO_DATE, renewal_time=inputs.due)
    late = _first(BEFORE_ISSUING, inputs, now)
    if late is not None:
        return dataclasses.replace(late, message=f"{late.message} (needed: {trigger.message})")
    return trigger
