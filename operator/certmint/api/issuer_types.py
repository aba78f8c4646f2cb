"""The Issuer and ClusterIssuer resources, parsed once at the edge: `IssuerSpec.from_body`.

Also the CA they sign with (`CASpec`, optionally generated and rotated) and where their
trust bundle goes (`TrustDistributionSpec`, with its label-selector evaluation).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final, cast

from certmint.api import (
    certificate_types,
    fields,
    globs,
    pod_certificates,
    policy_types,
    resources,
)

DEFAULT_CA_DURATION: Final = timedelta(hours=87600)
DEFAULT_PREPARE_BEFORE_PERCENTAGE: Final = 50
DEFAULT_ACTIVATE_BEFORE_PERCENTAGE: Final = 17
DEFAULT_TRUST_DOMAIN: Final = "cluster.local"
DEFAULT_TRUST_CONFIG_MAP: Final = "certmint-trust"
RESERVED_CONFIG_MAP_NAMES: Final = frozenset({"kube-root-ca.crt", "openshift-service-ca.crt"})
RESERVED_CONFIG_MAP_PREFIXES: Final = ("kube-", "openshift-")
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]{1,255}")


@dataclasses.dataclass(frozen=True)
class GenerateSpec:
    """A root CA keypair the operator creates when the CA Secret is missing."""

    common_name: str
    duration: timedelta = DEFAULT_CA_DURATION
    private_key: certificate_types.PrivateKeySpec = dataclasses.field(
        default_factory=certificate_types.PrivateKeySpec
    )
    #: Prepare the next root when this share of the CA's lifetime remains.
    prepare_before_percentage: int = 50
    #: Sign with the next root when this share remains (and the longest leaf lifetime
    #: has passed since prepare).
    activate_before_percentage: int = 17


@dataclasses.dataclass(frozen=True)
class CASpec:
    """The CA an issuer signs with: a ``kubernetes.io/tls`` Secret, optionally generated."""

    secret_name: str
    generate: GenerateSpec | None = None


@dataclasses.dataclass(frozen=True)
class TrustDistributionSpec:
    """Namespaces that receive the issuer's trust bundle.

    A namespace receives it when its name matches one of ``namespaces`` or its labels
    match ``namespace_selector`` (see `selects`).

    Attributes:
        namespaces: Namespace globs.
        namespace_selector: A Kubernetes label selector with ``matchLabels`` (a
            mapping) and ``matchExpressions`` (a tuple of mappings with ``key``,
            ``operator`` and ``values``); None when not given. ``{}`` selects every
            namespace, as in Kubernetes.
        config_map_name: The ConfigMap written in each namespace.
        cluster_trust_bundle: Also publish a ClusterTrustBundle.
    """

    namespaces: tuple[str, ...] = ("*",)
    namespace_selector: Mapping[str, Any] | None = dataclasses.field(default=None, hash=False)
    config_map_name: str = DEFAULT_TRUST_CONFIG_MAP
    cluster_trust_bundle: bool = False

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether a namespace should receive the trust bundle.

        Args:
            namespace: The namespace's name.
            labels: Its labels.

        Returns:
            True when the name matches a glob or the labels match the selector.
        """
        if globs.glob_matches(self.namespaces, "namespace", namespace):
            return True
        if self.namespace_selector is None:
            return False
        if any(labels.get(k) != v for k, v in self.namespace_selector["matchLabels"].items()):
            return False
        for requirement in self.namespace_selector["matchExpressions"]:
            key, operator, values = (
                requirement["key"],
                requirement["operator"],
                requirement["values"],
            )
            present = key in labels
            if (
                (operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and present and labels[key] in values)
                or (operator == "Exists" and not present)
                or (operator == "DoesNotExist" and present)
            ):
                return False
        return True


@dataclasses.dataclass(frozen=True)
class IssuerSpec:
    """An Issuer's or ClusterIssuer's spec, validated.

    Exactly one of ``ca`` and ``self_signed`` is set. ``namespace`` is None for a
    ClusterIssuer, whose CA Secret lives in the operator's own namespace.
    """

    kind: resources.IssuerKind
    name: str
    namespace: str | None
    ca: CASpec | None
    self_signed: bool
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    policy: policy_types.IssuancePolicy = dataclasses.field(
        default_factory=policy_types.IssuancePolicy
    )
    trust_distribution: TrustDistributionSpec | None = None
    #: ``spec.podCertificates``: the PodCertificateRequest signer this issuer is, if any.
    pod_certificates: pod_certificates.PodCertificatesSpec | None = None

    @property
    def ref(self) -> certificate_types.IssuerRef:
        """The reference a Certificate uses to name this issuer."""
        return certificate_types.IssuerRef(name=self.name, kind=self.kind)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> IssuerSpec:
        """Parse an Issuer or ClusterIssuer object.

        Args:
            body: The whole object; ``kind`` and ``metadata`` are read too.

        Returns:
            The validated spec.

        Raises:
            SpecError: The first field that cannot be used, with its path.
        """
        body = fields.mapping(body, "body")
        kind = fields.choice(body.get("kind"), "kind", resources.ISSUER_KINDS, default="")
        if not kind:
            raise fields.SpecError("kind", "is required")
        metadata = fields.mapping(body.get("metadata"), "metadata")
        name = fields.kubernetes_name(metadata.get("name"), "metadata.name")
        namespace = (
            fields.kubernetes_name(metadata.get("namespace"), "metadata.namespace")
            if kind == "Issuer"
            else None
        )
        spec = fields.mapping(body.get("spec"), "spec")
        has_ca = spec.get("ca") is not None
        self_signed = spec.get("selfSigned") is not None
        if has_ca == self_signed:
            raise fields.SpecError("spec", "must set exactly one of ca and selfSigned")
        if self_signed:
            fields.mapping(spec.get("selfSigned"), "spec.selfSigned")
        if self_signed and spec.get("trustDistribution") is not None:
            raise fields.SpecError(
                "spec.trustDistribution",
                "a selfSigned issuer has no CA to distribute; remove trustDistribution",
            )
        label = f"{kind} {fields.quote(name)}"
        return cls(
            kind=cast(resources.IssuerKind, kind),
            name=name,
            namespace=namespace,
            ca=_parse_ca(spec.get("ca"), name) if has_ca else None,
            self_signed=self_signed,
            trust_domain=_parse_trust_domain(spec.get("trustDomain")),
            policy=policy_types.parse_policy(spec.get("policy"), label),
            trust_distribution=_parse_trust_distribution(spec.get("trustDistribution"), namespace),
            pod_certificates=pod_certificates.parse(
                spec.get("podCertificates"), self_signed=self_signed
            ),
        )


def _parse_ca(value: object, issuer_name: str) -> CASpec:
    field = "spec.ca"
    raw = fields.mapping(value, field)
    generate = None
    if raw.get("generate") is not None:
        generate_field = f"{field}.generate"
        generate_raw = fields.mapping(raw.get("generate"), generate_field)
        common_name = fields.optional_string(
            generate_raw.get("commonName"), f"{generate_field}.commonName"
        )
        if common_name is not None and len(common_name) > 64:
            raise fields.SpecError(
                f"{generate_field}.commonName",
                f"{fields.quote(common_name)} is longer than 64 characters",
            )
        generate = GenerateSpec(
            common_name=common_name or f"{issuer_name} root CA"[:64],
            duration=(
                fields.optional_duration(generate_raw.get("duration"), f"{generate_field}.duration")
                or DEFAULT_CA_DURATION
            ),
            private_key=certificate_types.parse_private_key(
                generate_raw.get("privateKey"), f"{generate_field}.privateKey"
            ),
            **_parse_rotation(generate_raw.get("rotation"), f"{generate_field}.rotation"),
        )
    return CASpec(
        secret_name=fields.kubernetes_name(raw.get("secretName"), f"{field}.secretName"),
        generate=generate,
    )


def _parse_rotation(value: object, field: str) -> dict[str, int]:
    raw = fields.mapping(value or {}, field)
    percentages = {
        "prepare_before_percentage": fields.integer(
            raw.get("prepareBeforePercentage"), f"{field}.prepareBeforePercentage"
        )
        or DEFAULT_PREPARE_BEFORE_PERCENTAGE,
        "activate_before_percentage": fields.integer(
            raw.get("activateBeforePercentage"), f"{field}.activateBeforePercentage"
        )
        or DEFAULT_ACTIVATE_BEFORE_PERCENTAGE,
    }
    for name, percentage in percentages.items():
        if not 1 <= percentage <= 99:
            camel = "".join(w.title() if i else w for i, w in enumerate(name.split("_")))
            raise fields.SpecError(f"{field}.{camel}", f"{percentage} is not between 1 and 99")
    if percentages["activate_before_percentage"] >= percentages["prepare_before_percentage"]:
        raise fields.SpecError(
            f"{field}.activateBeforePercentage", "must be below prepareBeforePercentage"
        )
    return percentages


def _parse_trust_domain(value: object) -> str:
    field = "spec.trustDomain"
    trust_domain = fields.optional_string(value, field) or DEFAULT_TRUST_DOMAIN
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise fields.SpecError(
            field,
            f"{fields.quote(trust_domain)} is not a SPIFFE trust domain; use at most 255 lowercase "
            'letters, digits, ".", "_" and "-", without scheme or port',
        )
    return trust_domain


def _parse_trust_distribution(
    value: object, issuer_namespace: str | None
) -> TrustDistributionSpec | None:
    """Where the trust bundle goes; a namespaced Issuer publishes only into its own namespace."""
    field = "spec.trustDistribution"
    if value is None:
        return None
    raw = fields.mapping(value, field)
    if issuer_namespace is not None:
        if (
            raw.get("namespaces") is not None
            or raw.get("namespaceSelector") is not None
            or raw.get("clusterTrustBundle") is True
        ):
            raise fields.SpecError(
                field,
                "an Issuer publishes its trust bundle only into its own namespace; "
                "namespaces, namespaceSelector and clusterTrustBundle need a ClusterIssuer",
            )
        raw = {**raw, "namespaces": [issuer_namespace]}
    selector = _parse_selector(raw.get("namespaceSelector"), f"{field}.namespaceSelector")
    default: tuple[str, ...] = ("*",) if selector is None else ()
    namespaces = globs.parse_globs(
        raw.get("namespaces"), f"{field}.namespaces", "namespace", default
    )
    if not namespaces and selector is None:
        raise fields.SpecError(field, "selects no namespace; set namespaces or namespaceSelector")
    config_map = raw.get("configMapName")
    return TrustDistributionSpec(
        namespaces=namespaces,
        namespace_selector=selector,
        config_map_name=(
            DEFAULT_TRUST_CONFIG_MAP
            if config_map is None
            else _trust_config_map_name(config_map, f"{field}.configMapName")
        ),
        cluster_trust_bundle=fields.boolean(
            raw.get("clusterTrustBundle"), f"{field}.clusterTrustBundle", default=False
        ),
    )


def _trust_config_map_name(value: object, field: str) -> str:
    """A ConfigMap name that is not one Kubernetes or OpenShift publishes itself."""
    name = fields.kubernetes_name(value, field)
    if name in RESERVED_CONFIG_MAP_NAMES or name.startswith(RESERVED_CONFIG_MAP_PREFIXES):
        raise fields.SpecError(
            field,
            f"{fields.quote(name)} is a name Kubernetes or OpenShift publish themselves "
            "(kube-root-ca.crt, openshift-service-ca.crt, kube-*, openshift-*); choose another",
        )
    return name


def _parse_selector(value: object, field: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    raw = fields.mapping(value, field)
    match_labels = fields.string_map(
        raw.get("matchLabels"), f"{field}.matchLabels", labels=True, ours=False
    )
    expressions = []
    for index, item in enumerate(
        fields.sequence(raw.get("matchExpressions"), f"{field}.matchExpressions")
    ):
        item_field = f"{field}.matchExpressions[{index}]"
        requirement = fields.mapping(item, item_field)
        key = fields.label_key(
            fields.string(requirement.get("key"), f"{item_field}.key"),
            f"{item_field}.key",
            ours=False,
        )
        operator = fields.choice(
            requirement.get("operator"),
            f"{item_field}.operator",
            ("In", "NotIn", "Exists", "DoesNotExist"),
            default="",
        )
        if not operator:
            raise fields.SpecError(f"{item_field}.operator", "is required")
        values = tuple(
            text for _, text in fields.strings(requirement.get("values"), f"{item_field}.values")
        )
        if (operator in {"In", "NotIn"}) != bool(values):
            raise fields.SpecError(
                f"{item_field}.values",
                f"must be {'set' if operator in {'In', 'NotIn'} else 'empty'} for {operator}",
            )
        expressions.append(
            fields.frozen_mapping({"key": key, "operator": operator, "values": values})
        )
    return fields.frozen_mapping(
        {"matchLabels": match_labels, "matchExpressions": tuple(expressions)}
    )
