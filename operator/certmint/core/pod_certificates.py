"""What to do with a PodCertificateRequest: a pure decision, first answer wins.

certmint answers a request whose ``signerName`` one issuer claims in
``spec.podCertificates``. The certificate is the same X509-SVID a Certificate gets: the
identity ``spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`` comes from the
request's API-verified fields (NodeRestriction checked the pod, its ServiceAccount and its
node against the requesting kubelet), the claims from the ``certmint.io/claims`` entry of
``unverifiedUserAnnotations``, and both go through the issuer's policy and the claims
extension exactly as a Certificate's do: the request is turned into a
`certificate_types.CertificateSpec` by the same parser, judged by `policy.evaluate`, and signed from
`issuance.leaf_request`.

`decide` returns a `Plan`; the executor (`certmint.runtime.pod_certificates`) carries it
out. Nothing here reads the clock.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from certmint.api import certificate_types, fields, issuer_types
from certmint.api import pod_certificates as api
from certmint.core import distribution, issuance, policy, state, status
from certmint.core import pod_certificate_requests as requests
from certmint.pki import building, issuing, keys, renewal

#: The ``unverifiedUserAnnotations`` key that asks for claims: a JSON object of claim
#: key to a list of values (or one value), e.g. ``{"role": ["reader"]}``.
CLAIMS_ANNOTATION: Final = "certmint.io/claims"
#: The API server wants ``beginRefreshAt`` at least this far from notBefore and notAfter.
REFRESH_MARGIN: Final = timedelta(minutes=10)

Action = Literal["ignore", "wait", "issue", "deny", "fail"]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The outcome of `decide`.

    Attributes:
        action: ``ignore`` (answered already, or not certmint's signer), ``wait`` (the
            issuer is not ready yet), ``issue``, ``deny`` (a Denied condition: the request
            is refused as it is) or ``fail`` (a Failed condition: certmint cannot sign).
        reason: CamelCase reason, the condition's and the Event's.
        message: For a human: what is going on and what to change.
        issuer: The issuer that answers, when one does.
        spec: What will be issued (``issue`` only).
        public_key: The key to certify (``issue`` only).
        denial: The policy rule behind a denial, for ``certmint_policy_denials_total``.
    """

    action: Action
    reason: str
    message: str
    issuer: state.IssuerRecord | None = None
    spec: certificate_types.CertificateSpec | None = None
    public_key: keys.PublicKey | None = None
    denial: str = ""


def claimants(signer_name: str, issuers: Iterable[state.IssuerRecord]) -> list[state.IssuerRecord]:
    """Every issuer whose ``podCertificates.signerName`` is ``signer_name``."""
    return [
        record
        for record in issuers
        if record.spec is not None
        and record.spec.pod_certificates is not None
        and record.spec.pod_certificates.signer_name == signer_name
    ]


def decide(
    request: requests.PodCertificateRequest,
    issuers: Sequence[state.IssuerRecord],
) -> Plan:
    """What to do with a request, given the issuers claiming its signer name.

    Args:
        request: The parsed request.
        issuers: `claimants` of its signer name.

    Returns:
        The first applicable plan: ignore, fail (signer name claimed twice), deny (another
        namespace's Issuer, the request form or key, the claims, the policy), wait (the
        issuer is not ready) or issue.
    """
    if request.answered or not issuers:
        return Plan("ignore", "NotOurs", "answered already, or not certmint's signer")
    if len(issuers) > 1:
        names = ", ".join(sorted(_label(record) for record in issuers))
        return Plan(
            "fail",
            "SignerNameConflict",
            f"signer {request.signer_name} is claimed by {names}; certmint signs for a "
            "signer name only when exactly one issuer claims it",
        )
    issuer = issuers[0]
    if issuer.kind == "Issuer" and issuer.namespace != request.namespace:
        return Plan(
            "deny",
            "NamespaceNotAllowed",
            f"{_label(issuer)} signs only for pods in namespace {issuer.namespace}",
            issuer,
            denial="NamespaceNotAllowed",
        )
    if not issuer.runtime.ready:
        return Plan("wait", "IssuerNotReady", issuer.runtime.message, issuer)
    return _judge(request, issuer)


def _label(record: state.IssuerRecord) -> str:
    where = f"{record.namespace}/" if record.namespace else ""
    return f'{record.kind} "{where}{record.name}"'


def _judge(request: requests.PodCertificateRequest, issuer: state.IssuerRecord) -> Plan:
    """The request's own checks, then the issuer's policy."""
    spec = issuer.spec
    assert spec is not None  # noqa: S101 -- claimants() only returns parsed issuers
    assert spec.pod_certificates is not None  # noqa: S101
    try:
        public_key = accepted_key(request, spec.pod_certificates, _label(issuer))
        wanted = certificate_spec(request, spec)
    except requests.RequestError as err:
        return Plan("deny", err.reason, err.message, issuer)
    denial = policy.evaluate(spec.policy, wanted, namespace=request.namespace)
    if denial is not None:
        return Plan("deny", denial.reason, denial.message, issuer, denial=denial.reason)
    return Plan("issue", "Issued", f"signed by {_label(issuer)}", issuer, wanted, public_key)


def accepted_key(
    request: requests.PodCertificateRequest, signing: api.PodCertificatesSpec, label: str
) -> keys.PublicKey:
    """The request's checked key, when its type is one the issuer accepts.

    Raises:
        RequestError: From `requests.public_key`, or ``UnsupportedKeyType``.
    """
    public_key = requests.public_key(request)
    key_type = requests.key_type(public_key)
    if key_type not in signing.key_types:
        raise requests.RequestError(
            "UnsupportedKeyType",
            f"key type {key_type} is not accepted by {label}; use one of "
            f"{', '.join(signing.key_types)}",
        )
    return public_key


def lifetime(request: requests.PodCertificateRequest, issuer: issuer_types.IssuerSpec) -> timedelta:
    """The lifetime to issue: ``podCertificates.duration`` or the policy's default, cut to
    the request's ``maxExpirationSeconds`` and the policy's ``maxDuration``.

    The policy's ``minDuration`` is not applied here: `policy.evaluate` refuses a lifetime
    below it, as it does for a Certificate.
    """
    assert issuer.pod_certificates is not None  # noqa: S101 -- only for signing issuers
    wanted = issuer.pod_certificates.duration or issuer.policy.default_duration
    return min(wanted, request.max_expiration, issuer.policy.max_duration)


def requested_claims(annotations: Mapping[str, str]) -> Any:
    """The raw claims asked for in ``certmint.io/claims`` (None when absent).

    Raises:
        RequestError: ``InvalidClaims`` when the value is not JSON.
    """
    text = annotations.get(CLAIMS_ANNOTATION)
    if text is None:
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        raise requests.RequestError(
            "InvalidClaims",
            f'unverifiedUserAnnotations["{CLAIMS_ANNOTATION}"] must be a JSON object of '
            'claim key to values, e.g. {"role": ["reader"]}',
        ) from None
    if isinstance(raw, dict):  # one value may be written without its list
        return {key: [value] if isinstance(value, str) else value for key, value in raw.items()}
    return raw


def certificate_spec(
    request: requests.PodCertificateRequest, issuer: issuer_types.IssuerSpec
) -> certificate_types.CertificateSpec:
    """The request as the Certificate spec it amounts to, parsed by the Certificate parser.

    Raises:
        RequestError: ``InvalidClaims`` for claims the Certificate parser refuses.
    """
    raw = requested_claims(request.user_annotations)
    body = {
        "spec": {
            "secretName": "pod-certificate",  # no Secret is written; the field is required
            "issuerRef": {"name": issuer.name, "kind": issuer.kind},
            "serviceAccountName": request.service_account_name,
            "claims": raw,
            "duration": fields.format_duration(lifetime(request, issuer)),
        }
    }
    try:
        return certificate_types.CertificateSpec.from_body(body)
    except fields.SpecError as err:
        where = f'unverifiedUserAnnotations["{CLAIMS_ANNOTATION}"]'
        raise requests.RequestError(
            "InvalidClaims", str(err).replace("spec.claims", where)
        ) from None


def leaf_request(plan: Plan, namespace: str, claims_oid: Any) -> issuing.LeafRequest:
    """What the certificate says, built by the same code as a Certificate's.

    The duration asked of the PKI core is the lifetime less the notBefore backdate, so
    the certificate's notAfter - notBefore is exactly the lifetime the policy allowed
    and never more than the request's ``maxExpirationSeconds``.
    """
    # decide() fills all of these for an "issue" plan.
    assert plan.issuer is not None  # noqa: S101
    assert plan.issuer.spec is not None  # noqa: S101
    assert plan.spec is not None  # noqa: S101
    assert plan.public_key is not None  # noqa: S101
    assert plan.spec.duration is not None  # noqa: S101
    return issuance.leaf_request(
        plan.spec,
        plan.issuer.spec,
        namespace,
        plan.public_key,
        plan.spec.duration - building.NOT_BEFORE_BACKDATE,
        claims_oid=claims_oid,
    )


def issued_problem(issued: issuing.IssuedCertificate) -> str | None:
    """Why a signed certificate cannot be handed out, or None.

    The API server refuses a pod certificate shorter than an hour; a CA that expires
    sooner cuts the lifetime (``clamped``) and then the request fails rather than loop.
    """
    certificate = issued.certificate
    if certificate.not_valid_after_utc - certificate.not_valid_before_utc >= api.MIN_LIFETIME:
        return None
    return (
        f"the issuing CA expires at {certificate.not_valid_after_utc.isoformat()}, too soon "
        "for a pod certificate of at least 1h; rotate the CA"
    )


def begin_refresh_at(not_before: datetime, not_after: datetime, seed: str) -> datetime:
    """When the kubelet should start refreshing: a Certificate's renewal time.

    The same window (a third of the lifetime) and the same deterministic jitter as
    `renewal.renewal_time`, then kept within the API server's bounds: at least
    `REFRESH_MARGIN` after notBefore and before notAfter.
    """
    moment = renewal.renewal_time(not_before, not_after, jitter_seed=seed)
    return min(max(moment, not_before + REFRESH_MARGIN), not_after - REFRESH_MARGIN)


class RefreshSlots:
    """The renewal rate bound applied to ``beginRefreshAt``: at most ``rate`` per second.

    Certificates pass their scheduled re-issues through a token bucket at
    ``--renewal-rate``; pod certificates are refreshed by the kubelets, so the bound is
    kept by handing out refresh times: a second that has ``rate`` refreshes already
    moves the next one a second earlier (earlier is always safe), or later when the
    earliest allowed moment is reached. Pure: a dict of counts, no clock of its own.
    """

    def __init__(self, rate: float) -> None:
        self.per_second = max(1, int(rate))
        self._taken: dict[int, int] = {}

    def reserve(self, moment: datetime, earliest: datetime, latest: datetime) -> datetime:
        """A refresh time near ``moment`` within [earliest, latest] with a free slot."""
        wanted = int(moment.timestamp())
        low, high = int(earliest.timestamp()) + 1, int(latest.timestamp())
        candidates = [*range(wanted, low - 1, -1), *range(wanted + 1, high + 1)]
        second = next((s for s in candidates if self._taken.get(s, 0) < self.per_second), wanted)
        self._taken[second] = self._taken.get(second, 0) + 1
        return moment + timedelta(seconds=second - wanted)

    def forget_before(self, moment: datetime) -> None:
        """Drops the counts of seconds that have passed."""
        cutoff = int(moment.timestamp())
        for second in [s for s in self._taken if s < cutoff]:
            del self._taken[second]


def condition(type_: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    """A terminal condition (Issued, Denied or Failed are only ever True)."""
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": message[:32768],
        "lastTransitionTime": status.timestamp(now),
    }


def issued_status(
    issued: issuing.IssuedCertificate, refresh_at: datetime, message: str, now: datetime
) -> dict[str, Any]:
    """The status of an issued request: chain (leaf first, no root) and its times."""
    certificate = issued.certificate
    return {
        "conditions": [condition("Issued", "Issued", message, now)],
        "certificateChain": issued.chain_pem.decode(),
        "notBefore": status.timestamp(certificate.not_valid_before_utc),
        "notAfter": status.timestamp(certificate.not_valid_after_utc),
        "beginRefreshAt": status.timestamp(refresh_at),
    }


def cluster_trust_bundle_body(
    signing: api.PodCertificatesSpec, kind: str, name: str, bundle_pem: bytes
) -> dict[str, Any]:
    """The ClusterTrustBundle pods mount to trust a signer's certificates.

    A pod selects it with a ``clusterTrustBundle`` projection by ``signerName``; the
    ownership labels are those of the issuer's other trust bundles.
    """
    return {
        "apiVersion": "certificates.k8s.io/v1beta1",
        "kind": "ClusterTrustBundle",
        "metadata": {
            "name": signing.cluster_trust_bundle_name,
            "labels": distribution.issuer_labels(kind, name),
        },
        "spec": {"signerName": signing.signer_name, "trustBundle": bundle_pem.decode()},
    }
