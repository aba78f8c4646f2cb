"""SPIFFE ID parsing and validation."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certmint.pki import errors, spiffe


@pytest.mark.parametrize(
    ("uri", "trust_domain", "path"),
    [
        pytest.param(
            "spiffe://cluster.local/ns/default/sa/api",
            "cluster.local",
            "/ns/default/sa/api",
            id="the Kubernetes convention",
        ),
        pytest.param("spiffe://example.org", "example.org", "", id="a trust domain alone"),
        pytest.param(
            "spiffe://a_b-c.9/x", "a_b-c.9", "/x", id="underscore and hyphen in the domain"
        ),
        pytest.param(
            "spiffe://td/Mixed.Case_-9", "td", "/Mixed.Case_-9", id="mixed case in the path"
        ),
        pytest.param("spiffe://td/..a/a..", "td", "/..a/a..", id="dots inside a segment"),
    ],
)
def test_valid_ids_parse(uri: str, trust_domain: str, path: str) -> None:
    parsed = spiffe.parse_spiffe_id(uri)
    assert parsed == spiffe.SpiffeId(trust_domain, path)
    assert str(parsed) == uri


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        pytest.param(
            "https://td/x", "'https://td/x' does not start with 'spiffe://'", id="another scheme"
        ),
        pytest.param(
            "SPIFFE://td/x",
            "'SPIFFE://td/x' does not start with 'spiffe://'",
            id="an uppercase scheme",
        ),
        pytest.param(
            "spiffe:/td/x", "'spiffe:/td/x' does not start with 'spiffe://'", id="one slash"
        ),
        pytest.param("spiffe://", "'spiffe://': the trust domain is empty", id="no trust domain"),
        pytest.param(
            "spiffe:///x", "'spiffe:///x': the trust domain is empty", id="an empty trust domain"
        ),
        pytest.param(
            "spiffe://Cluster.local/x",
            "'spiffe://Cluster.local/x': the trust domain 'Cluster.local' contains 'C', "
            "outside [a-z0-9._-]; trust domains are lowercase",
            id="an uppercase trust domain",
        ),
        pytest.param(
            "spiffe://td:8080/x",
            "'spiffe://td:8080/x' has a port; SPIFFE IDs do not allow it",
            id="a port",
        ),
        pytest.param(
            "spiffe://me@td/x",
            "'spiffe://me@td/x' has userinfo; SPIFFE IDs do not allow it",
            id="userinfo",
        ),
        pytest.param(
            "spiffe://td/x?y=1",
            "'spiffe://td/x?y=1' has a query; SPIFFE IDs do not allow it",
            id="a query",
        ),
        pytest.param(
            "spiffe://td/x#y",
            "'spiffe://td/x#y' has a fragment; SPIFFE IDs do not allow it",
            id="a fragment",
        ),
        pytest.param(
            "spiffe://td/",
            "'spiffe://td/': the SPIFFE path '/' has an empty segment or trailing '/'",
            id="a trailing slash",
        ),
        pytest.param(
            "spiffe://td/a//b",
            "'spiffe://td/a//b': the SPIFFE path '/a//b' has an empty segment or trailing '/'",
            id="an empty segment",
        ),
        pytest.param(
            "spiffe://td/a/./b",
            "'spiffe://td/a/./b': the SPIFFE path '/a/./b' has a '.' segment",
            id="a dot segment",
        ),
        pytest.param(
            "spiffe://td/a/..",
            "'spiffe://td/a/..': the SPIFFE path '/a/..' has a '..' segment",
            id="a dot-dot segment",
        ),
        pytest.param(
            "spiffe://td/a%20b",
            "'spiffe://td/a%20b': the SPIFFE path '/a%20b' contains '%', outside [a-zA-Z0-9._-]",
            id="percent-encoding",
        ),
        pytest.param(
            "spiffe://" + "a" * 256,
            f"'spiffe://{'a' * 256}': the trust domain is longer than 255 bytes",
            id="a trust domain over 255 bytes",
        ),
        pytest.param(
            "spiffe://td/" + "a" * 2040,
            "the SPIFFE ID is longer than 2048 bytes",
            id="an ID over 2048 bytes",
        ),
    ],
)
def test_invalid_ids_are_refused_with_the_rule_they_break(uri: str, message: str) -> None:
    with pytest.raises(errors.PKIError) as caught:
        spiffe.parse_spiffe_id(uri, field="uris[1]")
    assert (caught.value.field, caught.value.message) == ("uris[1]", message)


def test_workload_id_follows_the_kubernetes_convention() -> None:
    identity = spiffe.workload_id("cluster.local", "payments", "api")
    assert str(identity) == "spiffe://cluster.local/ns/payments/sa/api"


def test_workload_id_refuses_a_bad_trust_domain() -> None:
    with pytest.raises(errors.PKIError) as caught:
        spiffe.workload_id("Cluster.Local", "payments", "api")
    assert caught.value.field == "trustDomain"


def test_constructing_an_invalid_id_directly_is_refused() -> None:
    with pytest.raises(errors.PKIError) as caught:
        spiffe.SpiffeId("td", "/a/")
    assert caught.value.field == "uris"


trust_domains = st.text(
    alphabet=string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=40
)
segments = st.text(
    alphabet=string.ascii_letters + string.digits + "._-", min_size=1, max_size=20
).filter(lambda segment: segment not in {".", ".."})
paths = st.lists(segments, max_size=6).map(lambda parts: "".join(f"/{part}" for part in parts))


@given(trust_domains, paths)
def test_every_id_built_by_the_rules_parses_back(trust_domain: str, path: str) -> None:
    uri = f"spiffe://{trust_domain}{path}"
    assert spiffe.parse_spiffe_id(uri) == spiffe.SpiffeId(trust_domain, path)


forbidden_in_domain = st.sampled_from(list("ABCZ:@?#% !é"))
forbidden_in_path = st.sampled_from(list(":@?#% !é*+~"))


@given(trust_domains, paths, forbidden_in_domain, st.integers(min_value=0))
def test_a_forbidden_character_in_the_trust_domain_is_refused(
    trust_domain: str, path: str, bad: str, position: int
) -> None:
    index = position % (len(trust_domain) + 1)
    mutated = trust_domain[:index] + bad + trust_domain[index:]
    with pytest.raises(errors.PKIError):
        spiffe.parse_spiffe_id(f"spiffe://{mutated}{path}")


@given(
    trust_domains,
    st.lists(segments, min_size=1, max_size=6),
    forbidden_in_path,
    st.integers(min_value=0),
)
def test_a_forbidden_character_in_the_path_is_refused(
    trust_domain: str, parts: list[str], bad: str, position: int
) -> None:
    path = "".join(f"/{part}" for part in parts)
    index = 1 + position % len(path)
    mutated = path[:index] + bad + path[index:]
    with pytest.raises(errors.PKIError):
        spiffe.parse_spiffe_id(f"spiffe://{trust_domain}{mutated}")


@given(
    trust_domains,
    st.lists(segments, min_size=1, max_size=6),
    st.sampled_from(["", ".", ".."]),
    st.integers(min_value=0),
)
def test_an_empty_or_dot_segment_anywhere_is_refused(
    trust_domain: str, parts: list[str], bad_segment: str, position: int
) -> None:
    index = position % (len(parts) + 1)
    mutated = [*parts[:index], bad_segment, *parts[index:]]
    with pytest.raises(errors.PKIError):
        spiffe.parse_spiffe_id(f"spiffe://{trust_domain}/{'/'.join(mutated)}")
