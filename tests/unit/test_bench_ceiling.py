"""The API-ceiling writer: its probe sizes and its prepared Secret bodies."""

from __future__ import annotations

import datetime
import json

import pytest
from bench import ceiling, floor


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        pytest.param(100, 4 * 50, id="at least 50 per candidate"),
        pytest.param(10_000, 4 * 250, id="a fortieth of N per candidate"),
        pytest.param(100_000, 4 * 1000, id="at most 1000 per candidate"),
    ],
)
def test_the_probes_take_a_slice_per_candidate(n: int, expected: int) -> None:
    assert ceiling.probe_count(n) == expected


def test_a_prepared_secret_names_its_certificate_and_namespace() -> None:
    ca = floor.generate_ca(datetime.datetime.now(datetime.UTC))
    leaf, key = floor.issue_leaf(ca, "ceiling.bench.svc", datetime.datetime.now(datetime.UTC))
    body = floor.secret_body(
        ceiling.NAMESPACE_MARK, ceiling.NAME_MARK, leaf, key, ca.certificate_pem
    )
    secret = json.loads(ceiling.prepared_secret(json.dumps(body), "ns-1", "c00042"))
    metadata = secret["metadata"]
    assert (metadata["name"], metadata["namespace"]) == ("c00042-tls", "ns-1")
    assert metadata["annotations"]["certmint.io/certificate-name"] == "c00042"
    assert secret["data"] == body["data"]
