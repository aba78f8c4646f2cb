"""The Secret format: a Secret certmint just wrote reads as the summary it stores at once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certmint.core import issuance, secret_format
from certmint.pki import decode, issuing, keys
from tests.unit.test_readiness import CA, ECDSA, NAME, NAMESPACE, T0, certificate_spec, issuer_spec


@pytest.mark.parametrize("formats", [(), ("CombinedPEM", "DER")], ids=["plain", "extra formats"])
def test_the_summary_of_a_written_secret_equals_reading_it_back(formats: tuple[str, ...]) -> None:
    spec = certificate_spec(additionalOutputFormats=[{"type": name} for name in formats])
    key = keys.generate_private_key(ECDSA)
    request = issuance.leaf_request(
        spec, issuer_spec(), NAMESPACE, key.public_key(), timedelta(hours=1)
    )
    content = secret_format.SecretContent(
        namespace=NAMESPACE,
        certificate_name=NAME,
        certificate_uid="uid-1",
        spec=spec,
        spec_hash="hash",
        issued=issuing.issue(request, CA, T0),
        private_key=key,
        bundle_pem=decode.certificates_to_pem((CA.certificate,)),
        identity="spiffe://cluster.local/ns/payments/sa/api",
        revision=3,
        renew_request="",
    )
    answer = secret_format.secret_body(content)  # what the API returns, plus its metadata
    answer["metadata"].update({"uid": "secret-uid", "resourceVersion": "42"})

    written = secret_format.written_secret(answer, content)

    assert written == secret_format.read_secret(answer)
    assert (written.resource_version, written.key_matches, written.revision) == ("42", True, 3)
