"""The names of certmint's API: group, version, kinds, plurals, label and annotation keys.

The one place these strings are written; every module that addresses a certmint
resource or reads or writes one of the operator's labels and annotations imports them
from here. docs/api.md documents them for users.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Final, Literal, TypeAlias

GROUP: Final = "certmint.io"
VERSION: Final = "v1alpha1"
#: ``apiVersion`` of every certmint object.
API_VERSION: Final = f"{GROUP}/{VERSION}"
#: Path prefix of the group's REST endpoints.
API_PREFIX: Final = f"/apis/{GROUP}/{VERSION}"

IssuerKind: TypeAlias = Literal["Issuer", "ClusterIssuer"]
ISSUER_KINDS: Final[tuple[IssuerKind, ...]] = ("Issuer", "ClusterIssuer")
#: The plural (URL path segment) of each kind.
PLURALS: Final[Mapping[str, str]] = types.MappingProxyType(
    {"Certificate": "certificates", "Issuer": "issuers", "ClusterIssuer": "clusterissuers"}
)
#: The issuer kinds by plural, as kopf names the resources it watches.
ISSUER_KINDS_BY_PLURAL: Final[Mapping[str, IssuerKind]] = types.MappingProxyType(
    {"issuers": "Issuer", "clusterissuers": "ClusterIssuer"}
)
#: ``reportingComponent`` of the Events the operator writes.
REPORTING_COMPONENT: Final = "certmint.io/operator"

# Issued Secrets: the label the operator selects them by, and its annotations.
LABEL_CERTIFICATE_NAME: Final = "certmint.io/certificate-name"
ANNOTATION_CERTIFICATE_NAME: Final = "certmint.io/certificate-name"
ANNOTATION_CERTIFICATE_UID: Final = "certmint.io/certificate-uid"
ANNOTATION_ISSUER_NAME: Final = "certmint.io/issuer-name"
ANNOTATION_ISSUER_KIND: Final = "certmint.io/issuer-kind"
ANNOTATION_IDENTITY: Final = "certmint.io/identity"
ANNOTATION_SERIAL: Final = "certmint.io/serial"
ANNOTATION_REVISION: Final = "certmint.io/revision"
ANNOTATION_SPEC_HASH: Final = "certmint.io/spec-hash"
ANNOTATION_DELETION_POLICY: Final = "certmint.io/secret-deletion-policy"
#: certmint's mark on a Secret it adopted: its foreign labels and annotations are kept.
ANNOTATION_ADOPTED_FROM: Final = "certmint.io/adopted-from"
#: On a Certificate (``certmint renew``): issue again now.
ANNOTATION_RENEW_REQUEST: Final = "certmint.io/renew-requested-at"

# Trust bundles (ConfigMaps, ClusterTrustBundles): whose bundle it is.
LABEL_TRUST_ISSUER_KIND: Final = "certmint.io/trust-issuer-kind"
LABEL_TRUST_ISSUER_NAME: Final = "certmint.io/trust-issuer-name"
ANNOTATION_SPIFFE_SEQUENCE: Final = "certmint.io/spiffe-sequence"

# CA Secrets the operator generates and rotates, and requests on issuers.
ANNOTATION_GENERATED_FOR: Final = "certmint.io/generated-for"
ANNOTATION_PREPARED_AT: Final = "certmint.io/prepared-at"
ANNOTATION_ACTIVATE_AFTER: Final = "certmint.io/activate-after"
ANNOTATION_ROTATION_REASON: Final = "certmint.io/rotation-reason"
#: On an issuer (``certmint rotate-ca``): start a CA rotation now.
ANNOTATION_ROTATE_REQUEST: Final = "certmint.io/rotate-requested-at"
#: With a rotate request: "true" activates at once and distrusts every older root.
ANNOTATION_ROTATE_EMERGENCY: Final = "certmint.io/rotate-emergency"
#: On a CA Secret promoted by an emergency rotation: older roots are not kept.
ANNOTATION_DISTRUSTS_OLDER: Final = "certmint.io/distrusts-older-roots"
