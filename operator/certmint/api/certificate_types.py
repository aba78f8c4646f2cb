"""The Certificate resource, parsed once at the edge: `CertificateSpec.from_body`.

Handlers call it on the raw object and hand the frozen result down; nothing below them
sees a raw dict. Errors are `certmint.api.fields.SpecError` with the field path.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import sys
import types
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final, Literal, cast

from certmint.api import extension_types, fields, resources
from certmint.pki import claims as pki_claims
from certmint.pki import errors as pki_errors
from certmint.pki import names as pki_names

KEY_SIZES: Final[Mapping[str, tuple[int, ...]]] = types.MappingProxyType(
    {"ECDSA": (256, 384), "RSA": (2048, 3072, 4096), "Ed25519": ()}
)
KEY_USAGES: Final = frozenset(
    {
        "digital signature",
        "content commitment",
        "key encipherment",
        "data encipherment",
        "key agreement",
        "cert sign",
        "crl sign",
        "encipher only",
        "decipher only",
    }
)
EXTENDED_KEY_USAGES: Final = frozenset(
    {
        "server auth",
        "client auth",
        "code signing",
        "email protection",
        "timestamping",
        "ocsp signing",
        "any",
    }
)
DEFAULT_USAGES: Final = ("digital signature", "key encipherment", "server auth", "client auth")
OUTPUT_FORMATS: Final = frozenset({"CombinedPEM", "DER"})
#: Subject attributes besides the common name: (spec key, SubjectSpec attribute).
SUBJECT_FIELDS: Final = (
    ("organizations", "organizations"),
    ("organizationalUnits", "organizational_units"),
    ("countries", "countries"),
    ("provinces", "provinces"),
    ("localities", "localities"),
)

_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_MAX_CLAIM_VALUE = 1024
_MAX_SUBJECT_VALUE = 64


@dataclasses.dataclass(frozen=True, slots=True)
class IssuerRef:
    """Which issuer signs a Certificate."""

    name: str
    kind: resources.IssuerKind = "Issuer"

    @property
    def label(self) -> str:
        """The issuer as people write it in messages: ``ClusterIssuer "workloads"``."""
        return f"{self.kind} {fields.quote(self.name)}"


@dataclasses.dataclass(frozen=True, slots=True)
class SubjectSpec:
    """Distinguished-name attributes besides the common name."""

    organizations: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    localities: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class PrivateKeySpec:
    """The key a certificate is issued for.

    Attributes:
        algorithm: ``ECDSA``, ``RSA`` or ``Ed25519``.
        size: Curve or modulus size; None picks the algorithm's default
            (ECDSA 256, RSA 2048) and stays None for Ed25519.
        rotation_policy: ``Always`` makes a new key for every issuance, ``Never``
            reuses the key in the Secret.
    """

    algorithm: str = "ECDSA"
    size: int | None = None
    rotation_policy: Literal["Always", "Never"] = "Always"

    def __post_init__(self) -> None:
        if self.size is None and KEY_SIZES.get(self.algorithm):
            # A frozen dataclass can only fill a derived default this way.
            object.__setattr__(self, "size", KEY_SIZES[self.algorithm][0])


_NO_SUBJECT: Final = SubjectSpec()
_DEFAULT_PRIVATE_KEY: Final = PrivateKeySpec()
_NO_FORMATS: Final[frozenset[str]] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class PKCS12Spec:
    """Where the password of the PKCS#12 keystore comes from (a Secret in the same namespace)."""

    password_secret_name: str
    password_secret_key: str


@dataclasses.dataclass(frozen=True, slots=True)
class CertificateSpec:
    """A Certificate's spec, validated and normalized.

    Lists of names keep the order written (messages refer to ``dnsNames[1]``);
    DNS names and email domains are lowercased, IP addresses are in canonical form.
    Claims have sorted keys and sorted unique values, the order of the wire format.
    ``duration`` None means the issuer's default; ``renew_before`` and
    ``renew_before_percentage`` both None mean one third of the lifetime.
    """

    secret_name: str
    issuer_ref: IssuerRef
    service_account_name: str | None = None
    common_name: str | None = None
    subject: SubjectSpec = _NO_SUBJECT
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    email_addresses: tuple[str, ...] = ()
    claims: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=fields.empty_mapping, hash=False
    )
    extensions: tuple[extension_types.ExtensionSpec, ...] = ()
    duration: timedelta | None = None
    renew_before: timedelta | None = None
    renew_before_percentage: int | None = None
    private_key: PrivateKeySpec = _DEFAULT_PRIVATE_KEY
    usages: tuple[str, ...] = DEFAULT_USAGES
    is_ca: bool = False
    secret_labels: Mapping[str, str] = dataclasses.field(
        default_factory=fields.empty_mapping, hash=False
    )
    secret_annotations: Mapping[str, str] = dataclasses.field(
        default_factory=fields.empty_mapping, hash=False
    )
    additional_output_formats: frozenset[str] = _NO_FORMATS
    pkcs12: PKCS12Spec | None = None
    secret_deletion_policy: Literal["Retain", "Delete"] = "Retain"  # noqa: S105 -- not a secret
    #: spec.secretAdoption.certManagerCertificateName: whose cert-manager Secret to take over.
    adopt_cert_manager_certificate: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> CertificateSpec:
        """Parse a Certificate object.

        Args:
            body: The whole object as the API server returned it.

        Returns:
            The validated spec.

        Raises:
            SpecError: The first field that cannot be used, with its path.
        """
        spec = fields.mapping(fields.mapping(body, "body").get("spec"), "spec")
        # The groups read the fields in a fixed order, so the first bad one is reported.
        names = _parse_names(spec)
        return cls(
            **names,
            **_parse_issuance(spec, names["service_account_name"]),
            **_parse_secret_output(spec),
        )


def _parse_names(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the certificate names: secret, issuer, identity, subject, SANs, claims."""
    secret_name = fields.kubernetes_name(spec.get("secretName"), "spec.secretName")
    issuer_ref = _parse_issuer_ref(spec.get("issuerRef"))
    service_account = fields.optional_string(
        spec.get("serviceAccountName"), "spec.serviceAccountName"
    )
    if service_account is not None:
        service_account = sys.intern(
            fields.kubernetes_name(service_account, "spec.serviceAccountName")
        )
    return {
        "secret_name": secret_name,
        "issuer_ref": issuer_ref,
        "service_account_name": service_account,
        "common_name": _parse_common_name(spec.get("commonName")),
        "subject": _parse_subject(spec.get("subject")),
        "dns_names": fields.unique(spec.get("dnsNames"), "spec.dnsNames", fields.dns_name),
        "ip_addresses": fields.unique(
            spec.get("ipAddresses"), "spec.ipAddresses", fields.ip_address
        ),
        "uris": fields.unique(spec.get("uris"), "spec.uris", fields.uri),
        "email_addresses": fields.unique(
            spec.get("emailAddresses"), "spec.emailAddresses", fields.email
        ),
        "claims": _parse_claims(spec.get("claims")),
        "extensions": extension_types.parse_extensions(spec.get("extensions")),
    }


def _parse_issuance(spec: Mapping[str, Any], service_account: str | None) -> dict[str, Any]:
    """How the certificate is issued: lifetime, renewal, key, usages, CA."""
    duration = fields.optional_duration(spec.get("duration"), "spec.duration")
    renew_before, percentage = _parse_renewal(spec, duration)
    private_key = parse_private_key(spec.get("privateKey"), "spec.privateKey")
    is_ca = fields.boolean(spec.get("isCA"), "spec.isCA", default=False)
    usages = _parse_usages(spec.get("usages"), is_ca=is_ca)
    if is_ca and service_account is not None:
        raise fields.SpecError(
            "spec.isCA",
            "a CA certificate cannot carry a workload identity; "
            "remove spec.serviceAccountName or set isCA to false",
        )
    return {
        "duration": duration,
        "renew_before": renew_before,
        "renew_before_percentage": percentage,
        "private_key": private_key,
        "usages": usages,
        "is_ca": is_ca,
    }


def _parse_secret_output(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the Secret looks like: template, extra formats, keystore, deletion, adoption."""
    template = fields.mapping(spec.get("secretTemplate"), "spec.secretTemplate")
    return {
        "secret_labels": fields.string_map(
            template.get("labels"), "spec.secretTemplate.labels", labels=True
        ),
        "secret_annotations": fields.string_map(
            template.get("annotations"), "spec.secretTemplate.annotations", labels=False
        ),
        "additional_output_formats": _parse_output_formats(spec.get("additionalOutputFormats")),
        "pkcs12": _parse_pkcs12(spec.get("keystores")),
        "secret_deletion_policy": fields.choice(
            spec.get("secretDeletionPolicy"),
            "spec.secretDeletionPolicy",
            ("Retain", "Delete"),
            default="Retain",
        ),
        "adopt_cert_manager_certificate": _parse_adoption(spec.get("secretAdoption")),
    }


def _parse_adoption(value: object) -> str | None:
    field = "spec.secretAdoption"
    if value is None:
        return None
    name = fields.mapping(value, field).get("certManagerCertificateName")
    return fields.optional_string(name, f"{field}.certManagerCertificateName") or None


def _parse_issuer_ref(value: object) -> IssuerRef:
    field = "spec.issuerRef"
    if value is None:
        raise fields.SpecError(field, "is required")
    ref = fields.mapping(value, field)
    kind = fields.choice(ref.get("kind"), f"{field}.kind", resources.ISSUER_KINDS, default="Issuer")
    return _issuer_ref(
        fields.kubernetes_name(ref.get("name"), f"{field}.name"), cast(resources.IssuerKind, kind)
    )


@functools.lru_cache(maxsize=1024)
def _issuer_ref(name: str, kind: resources.IssuerKind) -> IssuerRef:
    # A fleet refers to a few issuers: the specs share their references (bounded cache).
    return IssuerRef(name=sys.intern(name), kind=kind)


def _subject_value(text: str, field: str) -> str:
    """A subject attribute value the signer will accept (printable, not blank, bounded)."""
    if not text.strip():
        raise fields.SpecError(field, "must not be blank")
    if len(text) > _MAX_SUBJECT_VALUE:
        raise fields.SpecError(
            field, f"{fields.quote(text)} is longer than {_MAX_SUBJECT_VALUE} characters"
        )
    character = pki_names.unprintable_character(text)
    if character is not None:
        raise fields.SpecError(
            field,
            f"{json.dumps(text)} contains the unprintable character {character}; subject "
            "values are printable text",
        )
    return text


def _parse_common_name(value: object) -> str | None:
    field = "spec.commonName"
    common_name = fields.optional_string(value, field)
    if common_name is None:
        return None
    _subject_value(common_name, field)
    if pki_names.is_idna_shaped(common_name):
        # A hostname for old clients: ASCII as for dnsNames, never converted silently.
        raise fields.SpecError(
            field, f"{fields.quote(common_name)} {pki_names.non_ascii_dns_problem(common_name)}"
        )
    return common_name


def _parse_subject(value: object) -> SubjectSpec:
    subject = fields.mapping(value, "spec.subject")

    def values(key: str) -> tuple[str, ...]:
        return fields.unique(subject.get(key), f"spec.subject.{key}", _subject_value)

    def country(text: str, field: str) -> str:
        if not _COUNTRY.fullmatch(text):
            raise fields.SpecError(
                field, f'{fields.quote(text)} is not a two-letter country code such as "DE"'
            )
        return text.upper()

    parsed = SubjectSpec(
        organizations=values("organizations"),
        organizational_units=values("organizationalUnits"),
        countries=fields.unique(subject.get("countries"), "spec.subject.countries", country),
        provinces=values("provinces"),
        localities=values("localities"),
    )
    # One shared object for the common case: a fleet of specs holds no copies of it.
    return _NO_SUBJECT if parsed == _NO_SUBJECT else parsed


def _parse_claims(value: object) -> Mapping[str, tuple[str, ...]]:
    claims: dict[str, tuple[str, ...]] = {}
    for key, raw_values in sorted(fields.mapping(value, "spec.claims").items()):
        field = f"spec.claims.{key}"
        if not fields.CLAIM_KEY.fullmatch(key):
            raise fields.SpecError(
                "spec.claims",
                f"key {fields.quote(key)} is not a claim key; use letters, digits, "
                '".", "_", "-" and "/", starting and ending with a letter or digit',
            )
        texts = [text for _, text in fields.strings(raw_values, field)]
        if not texts:
            raise fields.SpecError(field, "must list at least one value")
        for index, text in enumerate(texts):
            if len(text) > _MAX_CLAIM_VALUE:
                raise fields.SpecError(
                    f"{field}[{index}]", f"is longer than {_MAX_CLAIM_VALUE} characters"
                )
        claims[key] = tuple(sorted(set(texts)))
    try:
        # The signer's own check: a claim it would refuse is refused here, once.
        pki_claims.normalize_claims(claims)
    except pki_errors.PKIError as err:
        raise fields.SpecError(f"spec.{err.field}", err.message) from None
    return types.MappingProxyType(claims) if claims else fields.EMPTY_MAPPING


def _parse_renewal(
    spec: Mapping[str, Any], duration: timedelta | None
) -> tuple[timedelta | None, int | None]:
    renew_before = fields.optional_duration(spec.get("renewBefore"), "spec.renewBefore")
    percentage = fields.integer(spec.get("renewBeforePercentage"), "spec.renewBeforePercentage")
    if renew_before is not None and percentage is not None:
        raise fields.SpecError(
            "spec.renewBeforePercentage", "cannot be combined with spec.renewBefore; set one"
        )
    if percentage is not None and not 1 <= percentage <= 99:
        raise fields.SpecError(
            "spec.renewBeforePercentage", f"{percentage} is not between 1 and 99"
        )
    if renew_before is not None and duration is not None and renew_before >= duration:
        raise fields.SpecError(
            "spec.renewBefore",
            f"{fields.format_duration(renew_before)} must be shorter than spec.duration "
            f"{fields.format_duration(duration)}",
        )
    return renew_before, percentage


def parse_private_key(value: object, field: str) -> PrivateKeySpec:
    """A ``privateKey`` object (a Certificate's, or a generated CA's)."""
    raw = fields.mapping(value, field)
    algorithm = fields.choice(
        raw.get("algorithm"), f"{field}.algorithm", tuple(KEY_SIZES), default="ECDSA"
    )
    sizes = KEY_SIZES[algorithm]
    size = fields.integer(raw.get("size"), f"{field}.size")
    if size is not None and not sizes:
        raise fields.SpecError(
            f"{field}.size", f"must be left out for {algorithm}, which has one size"
        )
    if size is not None and size not in sizes:
        raise fields.SpecError(
            f"{field}.size",
            f"{size} is not a {algorithm} size; use one of {', '.join(map(str, sizes))}",
        )
    policy = fields.choice(
        raw.get("rotationPolicy"), f"{field}.rotationPolicy", ("Always", "Never"), default="Always"
    )
    parsed = PrivateKeySpec(
        algorithm=algorithm,
        size=size,
        rotation_policy=cast(Literal["Always", "Never"], policy),
    )
    return _DEFAULT_PRIVATE_KEY if parsed == _DEFAULT_PRIVATE_KEY else parsed


def _parse_usages(value: object, *, is_ca: bool) -> tuple[str, ...]:
    known = KEY_USAGES | EXTENDED_KEY_USAGES

    def usage(text: str, field: str) -> str:
        if text not in known:
            raise fields.SpecError(
                field, f"{fields.quote(text)} is not a usage; use one of {', '.join(sorted(known))}"
            )
        if text in {"cert sign", "crl sign"} and not is_ca:
            raise fields.SpecError(
                field, f"{fields.quote(text)} is only for CA certificates (spec.isCA: true)"
            )
        return text

    usages = fields.unique(value, "spec.usages", usage)
    return usages or DEFAULT_USAGES


def _parse_output_formats(value: object) -> frozenset[str]:
    formats = set()
    for index, raw in enumerate(fields.sequence(value, "spec.additionalOutputFormats")):
        field = f"spec.additionalOutputFormats[{index}].type"
        output_format = fields.choice(
            fields.mapping(raw, field).get("type"), field, sorted(OUTPUT_FORMATS), default=""
        )
        if not output_format:
            raise fields.SpecError(field, "is required")
        formats.add(output_format)
    return frozenset(formats) if formats else _NO_FORMATS


def _parse_pkcs12(value: object) -> PKCS12Spec | None:
    field = "spec.keystores.pkcs12"
    raw = fields.mapping(fields.mapping(value, "spec.keystores").get("pkcs12"), field)
    if not fields.boolean(raw.get("create"), f"{field}.create", default=False):
        return None
    ref_field = f"{field}.passwordSecretRef"
    if raw.get("passwordSecretRef") is None:
        raise fields.SpecError(ref_field, "is required when create is true")
    ref = fields.mapping(raw.get("passwordSecretRef"), ref_field)
    key = fields.string(ref.get("key"), f"{ref_field}.key")
    if not _SECRET_KEY.fullmatch(key):
        raise fields.SpecError(f"{ref_field}.key", f"{fields.quote(key)} is not a Secret data key")
    return PKCS12Spec(
        password_secret_name=fields.kubernetes_name(ref.get("name"), f"{ref_field}.name"),
        password_secret_key=key,
    )
