"""Trust distribution's pure decisions: which objects are the issuer's, and the condition."""

from __future__ import annotations

from typing import Any

import pytest

from certmint.core import distribution

OURS = {
    "certmint.io/trust-issuer-kind": "ClusterIssuer",
    "certmint.io/trust-issuer-name": "workloads",
}


def config_map(labels: dict[str, str] | None) -> dict[str, Any]:
    return {"metadata": {"name": "trust", "namespace": "team", "labels": labels}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(config_map(OURS), True, id="both labels naming this issuer: ours"),
        pytest.param(config_map(None), False, id="no labels at all: not ours"),
        pytest.param(
            config_map({**OURS, "certmint.io/trust-issuer-name": "other"}),
            False,
            id="another issuer of the same kind: not ours",
        ),
        pytest.param(
            config_map({**OURS, "certmint.io/trust-issuer-kind": "Issuer"}),
            False,
            id="an Issuer of the same name: not ours",
        ),
        pytest.param(
            config_map({"certmint.io/trust-issuer-name": "workloads"}),
            False,
            id="the name label without the kind label: not ours",
        ),
        pytest.param(None, False, id="an absent object is nobody's"),
    ],
)
def test_owns_needs_both_labels_of_this_very_issuer(
    body: dict[str, Any] | None, expected: bool
) -> None:
    assert distribution.owns(body, "ClusterIssuer", "workloads") is expected


CONFLICT = distribution.conflict_message(
    'ConfigMap "team/app-config"',
    "Issuer",
    "ca",
    "Choose another trustDistribution.configMapName or delete that ConfigMap.",
)


def test_a_conflict_message_names_the_object_the_issuer_and_the_way_out() -> None:
    assert CONFLICT == (
        'ConfigMap "team/app-config" exists and was not created by certmint for Issuer "ca"; '
        "certmint never overwrites it. Choose another trustDistribution.configMapName or "
        "delete that ConfigMap."
    )


@pytest.mark.parametrize(
    ("conflicts", "expected"),
    [
        pytest.param(
            (),
            (
                "True",
                "Distributed",
                'the trust bundle is published as ConfigMap "app-config" in every selected '
                "namespace",
            ),
            id="no conflict: distributed",
        ),
        pytest.param(
            (CONFLICT,),
            ("False", "TrustDistributionConflict", CONFLICT),
            id="one conflict: its message",
        ),
        pytest.param(
            (CONFLICT,) * 7,
            ("False", "TrustDistributionConflict", " ".join([CONFLICT] * 5 + ["and 2 more"])),
            id="many conflicts: the first five and a count",
        ),
    ],
)
def test_the_trust_distributed_condition(
    conflicts: tuple[str, ...], expected: tuple[str, str, str]
) -> None:
    assert distribution.condition(conflicts, "app-config") == expected
