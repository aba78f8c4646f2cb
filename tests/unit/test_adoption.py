"""certmint.core.adoption: the one decision on whether certmint may write an existing Secret."""

from __future__ import annotations

import pytest

from certmint.core import adoption


@pytest.mark.parametrize(
    ("adopt", "owner", "cert_manager_name", "expected"),
    [
        pytest.param(None, "api", None, adoption.Ownership(writable=True),
                     id="certmint writes the Secret its label says it created"),
        pytest.param("api", "api", "api", adoption.Ownership(writable=True),
                     id="an adopted Secret is certmint's own after the first issuance"),
        pytest.param(None, "other", None,
                     adoption.Ownership(False, reason='belongs to Certificate "other"'),
                     id="another Certificate's Secret is refused"),
        pytest.param("api", "other", "api",
                     adoption.Ownership(False, reason='belongs to Certificate "other"'),
                     id="adoption never takes another certmint Certificate's Secret"),
        pytest.param(None, None, "api",
                     adoption.Ownership(False, reason="belongs to no certmint Certificate"),
                     id="a cert-manager Secret is refused without secretAdoption"),
        pytest.param("api", None, "api", adoption.Ownership(writable=True, adopting=True),
                     id="a cert-manager Secret of the same Certificate name is adopted"),
        pytest.param("api", None, "web",
                     adoption.Ownership(False, reason='has "web" cert-manager.io/certificate-name '
                                        'annotation, not "api", so spec.secretAdoption does not '
                                        "cover it"),
                     id="a cert-manager Secret of another Certificate is refused"),
        pytest.param("api", None, None,
                     adoption.Ownership(False, reason="has no cert-manager.io/certificate-name "
                                        'annotation, not "api", so spec.secretAdoption does not '
                                        "cover it"),
                     id="a foreign Secret without cert-manager's annotation is refused"),
        pytest.param("web", None, "web",
                     adoption.Ownership(False,
                                        reason="spec.secretAdoption names another Certificate"),
                     id="adoption must name the Certificate itself"),
    ],
)  # fmt: skip
def test_decide(
    adopt: str | None, owner: str | None, cert_manager_name: str | None, expected: object
) -> None:
    assert adoption.decide("api", adopt, owner, cert_manager_name) == expected


def test_foreign_keeps_everything_but_issuer_owned_keys() -> None:
    annotations = {
        "cert-manager.io/certificate-name": "api",
        "cert-manager.io/issuer-name": "ca",
        "controller.cert-manager.io/fao": "true",
        "certmint.io/serial": "01",
        "reflector.v1.k8s.emberstack.com/reflection-allowed": "true",
        "team": "payments",
    }

    assert adoption.foreign(annotations) == {
        "reflector.v1.k8s.emberstack.com/reflection-allowed": "true",
        "team": "payments",
    }
