"""Pure conversion of cert-manager ``cert-manager.io/v1`` objects into certmint objects.

``convert`` takes parsed YAML documents and returns the certmint equivalents plus every
field that has no equivalent, with the reason. It reads no cluster and writes nothing:
``certmint convert`` (cli) does the file handling. docs/migrating-from-cert-manager.md
explains each mapping.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from certmint.api import resources

CERT_MANAGER_API = "cert-manager.io/v1"
DEFAULT_TRUST_DOMAIN = "cluster.local"
_SPIFFE_SA = re.compile(r"spiffe://(?P<td>[^/]+)/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)")

# Certificate spec fields copied unchanged: certmint names and shapes them as cert-manager does.
_CERT_COPIED = (
    "secretName", "commonName", "dnsNames", "ipAddresses", "emailAddresses", "duration",
    "renewBefore", "renewBeforePercentage", "isCA", "usages", "secretTemplate",
    "additionalOutputFormats",
)  # fmt: skip
_SUBJECT_COPIED = ("organizations", "organizationalUnits", "countries", "provinces", "localities")
_CERT_LOST = {
    "literalSubject": "certmint builds the subject from structured fields only",
    "otherNames": "certmint issues no otherName SANs",
    "nameConstraints": "certmint's issuers do not put name constraints into certificates",
    "revisionHistoryLimit": "certmint keeps no CertificateRequest history",
    "encodeUsagesInRequest": "certmint signs without a CSR",
    "signatureAlgorithm": "certmint signs with the algorithm of the issuer's key",
}
_SUBJECT_LOST = dict.fromkeys(
    ("streetAddresses", "postalCodes", "serialNumber"), "certmint has no such subject field"
)
_ISSUER_LOST = {
    "acme": "certmint has no ACME issuer; keep cert-manager for public certificates",
    "vault": "certmint signs with its own CA, not Vault",
    "venafi": "certmint signs with its own CA, not Venafi",
}
_CA_LOST = dict.fromkeys(
    ("crlDistributionPoints", "ocspServers", "issuingCertificateURLs"),
    "certmint writes no revocation or AIA URLs into certificates",
)
_PKCS12_LOST = {
    "profile": "certmint always writes its one modern PKCS#12 profile",
    "password": "certmint reads the password from passwordSecretRef only",
}


@dataclasses.dataclass(frozen=True)
class Loss:
    """One cert-manager field certmint cannot carry over.

    Attributes:
        source: ``Kind namespace/name`` of the cert-manager object.
        field: the field path, e.g. ``spec.keystores.jks``.
        reason: why it has no equivalent.
    """

    source: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class Conversion:
    """The result: certmint objects in input order, and what was lost."""

    objects: tuple[dict[str, Any], ...]
    losses: tuple[Loss, ...]


def convert(
    documents: Iterable[Mapping[str, Any]],
    trust_domain: str = DEFAULT_TRUST_DOMAIN,
    adopt: bool = True,
) -> Conversion:
    """Converts cert-manager Certificates, Issuers and ClusterIssuers.

    Args:
        documents: parsed YAML documents; ``None`` documents and ``List`` kinds are allowed.
        trust_domain: the trust domain given to converted issuers.
        adopt: give each converted Certificate ``secretAdoption`` so that certmint takes
            over the Secret cert-manager wrote for it.

    Returns:
        The converted objects and the losses. Objects of other APIs are reported as losses
        and not converted; an issuer with no equivalent (ACME, Vault, Venafi) is dropped.
    """
    flat = list(_flatten(documents))
    objects: list[dict[str, Any]] = []
    losses: list[Loss] = []
    for doc in flat:
        kind = str(doc.get("kind", ""))
        source = _source(doc)
        if doc.get("apiVersion") != CERT_MANAGER_API or kind not in _CONVERTERS:
            losses.append(Loss(source, "apiVersion/kind", "not a cert-manager.io/v1 object"))
            continue
        converted = _CONVERTERS[kind](doc, source, losses, trust_domain, adopt)
        if converted is not None:
            objects.append(converted)
    _grant_what_is_used(objects)
    return Conversion(tuple(objects), tuple(losses))


def _flatten(documents: Iterable[Mapping[str, Any] | None]) -> Iterable[Mapping[str, Any]]:
    for doc in documents:
        if not doc:
            continue
        if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List"):
            yield from _flatten(doc.get("items") or [])
        else:
            yield doc


def _source(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    name = meta.get("name", "?")
    namespace = meta.get("namespace")
    return (
        f"{doc.get('kind', '?')} {namespace}/{name}" if namespace else f"{doc.get('kind')} {name}"
    )


def _metadata(doc: Mapping[str, Any]) -> dict[str, Any]:
    meta = doc.get("metadata") or {}
    out: dict[str, Any] = {"name": meta.get("name")}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    if meta.get("labels"):
        out["labels"] = dict(meta["labels"])
    return out


def _lose_present(
    spec: Mapping[str, Any], table: Mapping[str, str], prefix: str, source: str, losses: list[Loss]
) -> None:
    losses.extend(Loss(source, f"{prefix}.{key}", why) for key, why in table.items() if key in spec)


def _convert_issuer(
    doc: Mapping[str, Any],
    source: str,
    losses: list[Loss],
    trust_domain: str,
    _adopt: bool,
) -> dict[str, Any] | None:
    spec = doc.get("spec") or {}
    _lose_present(spec, _ISSUER_LOST, "spec", source, losses)
    out: dict[str, Any] = {"trustDomain": trust_domain}
    if "ca" in spec:
        ca = spec["ca"] or {}
        _lose_present(ca, _CA_LOST, "spec.ca", source, losses)
        # The same Secret, as is: tls.crt/tls.key of the CA, so trust does not change.
        out["ca"] = {"secretName": ca.get("secretName")}
    elif "selfSigned" in spec:
        if (spec["selfSigned"] or {}).get("crlDistributionPoints"):
            losses.append(Loss(source, "spec.selfSigned.crlDistributionPoints", "no CRLs"))
        out["selfSigned"] = {}
    else:
        return None
    return {
        "apiVersion": resources.API_VERSION,
        "kind": doc["kind"],
        "metadata": _metadata(doc),
        "spec": out,
    }


def _convert_certificate(
    doc: Mapping[str, Any],
    source: str,
    losses: list[Loss],
    trust_domain: str,
    adopt: bool,
) -> dict[str, Any] | None:
    spec = doc.get("spec") or {}
    namespace = str((doc.get("metadata") or {}).get("namespace") or "default")
    out: dict[str, Any] = {key: spec[key] for key in _CERT_COPIED if key in spec}
    _lose_present(spec, _CERT_LOST, "spec", source, losses)
    out["issuerRef"] = _issuer_ref(spec.get("issuerRef") or {}, source, losses)
    if "subject" in spec:
        out["subject"] = _subject(spec["subject"] or {}, source, losses)
    if "privateKey" in spec:
        out["privateKey"] = _private_key(spec["privateKey"] or {}, source, losses)
    if "keystores" in spec:
        out["keystores"] = _keystores(spec["keystores"] or {}, source, losses)
    uris, account = _identity(spec.get("uris") or [], namespace, trust_domain, source, losses)
    if uris:
        out["uris"] = uris
    if account:
        out["serviceAccountName"] = account
    if adopt:
        out["secretAdoption"] = {"certManagerCertificateName": (doc.get("metadata") or {})["name"]}
    return {
        "apiVersion": resources.API_VERSION,
        "kind": "Certificate",
        "metadata": _metadata(doc),
        "spec": out,
    }


def _issuer_ref(ref: Mapping[str, Any], source: str, losses: list[Loss]) -> dict[str, Any]:
    group = ref.get("group", "cert-manager.io")
    kind = ref.get("kind", "Issuer")
    if group != "cert-manager.io" or kind not in ("Issuer", "ClusterIssuer"):
        losses.append(
            Loss(
                source,
                "spec.issuerRef",
                f"external issuer {kind}.{group} has no certmint equivalent",
            )
        )
    return {"name": ref.get("name"), "kind": kind}


def _subject(subject: Mapping[str, Any], source: str, losses: list[Loss]) -> dict[str, Any]:
    _lose_present(subject, _SUBJECT_LOST, "spec.subject", source, losses)
    return {key: subject[key] for key in _SUBJECT_COPIED if key in subject}


def _private_key(key: Mapping[str, Any], source: str, losses: list[Loss]) -> dict[str, Any]:
    if key.get("encoding", "PKCS1") == "PKCS1" and key.get("algorithm", "RSA") == "RSA":
        # cert-manager's default encoding for RSA keys; certmint always writes PKCS#8.
        losses.append(Loss(source, "spec.privateKey.encoding", "tls.key becomes PKCS#8"))
    out = {name: key[name] for name in ("algorithm", "size", "rotationPolicy") if name in key}
    out.setdefault("algorithm", "RSA")  # cert-manager's default algorithm
    if out["algorithm"] == "RSA":
        out.setdefault("size", 2048)
    return out


def _keystores(stores: Mapping[str, Any], source: str, losses: list[Loss]) -> dict[str, Any]:
    if "jks" in stores:
        losses.append(Loss(source, "spec.keystores.jks", "certmint writes PKCS#12 only"))
    pkcs12 = stores.get("pkcs12") or {}
    _lose_present(pkcs12, _PKCS12_LOST, "spec.keystores.pkcs12", source, losses)
    kept = {key: pkcs12[key] for key in ("create", "passwordSecretRef") if key in pkcs12}
    return {"pkcs12": kept} if kept else {}


def _identity(
    uris: Iterable[str], namespace: str, trust_domain: str, source: str, losses: list[Loss]
) -> tuple[list[str], str | None]:
    """Splits a SPIFFE ServiceAccount URI (certmint derives it) from the other URIs."""
    others: list[str] = []
    account: str | None = None
    for uri in uris:
        match = _SPIFFE_SA.fullmatch(uri)
        if not uri.startswith("spiffe://"):
            others.append(uri)
        elif match is None or match["ns"] != namespace or account is not None:
            losses.append(Loss(source, "spec.uris", f"{uri} is not this namespace's identity form"))
        elif match["td"] != trust_domain:
            why = f"{uri}: the issuer's trust domain is {trust_domain}, not {match['td']}"
            losses.append(Loss(source, "spec.uris", why))
        else:
            account = match["sa"]
    return others, account


def _grant_what_is_used(objects: list[dict[str, Any]]) -> None:
    """Gives each converted issuer a policy that allows exactly what its converted
    Certificates ask for: cert-manager's CA issuer allows anything, certmint's policy
    allows little by default, and a migration must not turn Ready Certificates into
    PolicyViolations. New Certificates get no more than the migrated ones use.
    """
    issuers = {_issuer_identity(obj): obj for obj in objects if obj["kind"] != "Certificate"}
    for obj in objects:
        if obj["kind"] != "Certificate":
            continue
        ref = obj["spec"]["issuerRef"]
        scope = obj["metadata"]["namespace"] if ref["kind"] == "Issuer" else ""
        issuer = issuers.get((ref["kind"], scope, ref["name"]))
        if issuer is not None:
            _grant(issuer["spec"].setdefault("policy", {}), obj["spec"])


def _issuer_identity(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _grant(policy: dict[str, Any], spec: Mapping[str, Any]) -> None:
    def add(key: str, values: Iterable[str]) -> None:
        if values:
            policy[key] = sorted({*policy.get(key, []), *values})

    common_name = [spec["commonName"]] if spec.get("commonName") else []
    add("allowedDNSNames", [*spec.get("dnsNames", []), *common_name])
    add("allowedIPAddresses", [_cidr(ip) for ip in spec.get("ipAddresses", [])])
    add("allowedURIs", spec.get("uris", []))
    add("allowedEmailAddresses", spec.get("emailAddresses", []))
    for key, values in (spec.get("subject") or {}).items():
        subject = policy.setdefault("allowedSubject", {})
        subject[key] = sorted({*subject.get(key, []), *values})
    if spec.get("isCA"):
        policy["allowCA"] = True
    duration = spec.get("duration")
    if duration and _seconds(duration) > max(_seconds(policy.get("maxDuration", "0s")), _WEEK):
        policy["maxDuration"] = duration


def _cidr(address: str) -> str:
    return f"{address}/128" if ":" in address else f"{address}/32"


_WEEK = 168 * 3600.0  # certmint's default maxDuration
_DURATION_PART = re.compile(r"([0-9.]+)(h|m|s)")


def _seconds(text: str) -> float:
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    return sum(float(n) * units[u] for n, u in _DURATION_PART.findall(text))


_CONVERTERS = {
    "Certificate": _convert_certificate,
    "Issuer": _convert_issuer,
    "ClusterIssuer": _convert_issuer,
}
