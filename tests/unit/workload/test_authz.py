"""The declarative authorization policy: rules, patterns and decisions."""

from __future__ import annotations

import datetime
import re

import pytest

from certmint import workload
from certmint.workload import authz

WEB_API = "spiffe://cluster.local/ns/web/sa/api"


def a_peer(identity: str = WEB_API, **claims: list[str]) -> workload.Peer:
    trust_domain, _, path = identity.removeprefix("spiffe://").partition("/")
    return workload.Peer(
        identity=identity,
        trust_domain=trust_domain,
        path="/" + path,
        claims=dict(claims),
        dns_names=(),
        not_after=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
        serial_number=1,
        certificate=None,  # type: ignore[arg-type]  # not used by the policy
    )


@pytest.mark.parametrize(
    ("pattern", "identity", "matches"),
    [
        pytest.param(WEB_API, WEB_API, True, id="an exact pattern matches that identity"),
        pytest.param(
            WEB_API, "spiffe://cluster.local/ns/web/sa/apix", False, id="exact means exact"
        ),
        pytest.param(
            "spiffe://cluster.local/ns/web/*",
            WEB_API,
            True,
            id="a final star matches everything under the prefix",
        ),
        pytest.param(
            "spiffe://cluster.local/ns/web/*",
            "spiffe://cluster.local/ns/web",
            False,
            id="a final star needs at least one segment",
        ),
        pytest.param(
            "spiffe://cluster.local/ns/*/sa/api",
            "spiffe://cluster.local/ns/payments/sa/api",
            True,
            id="a middle star matches one namespace",
        ),
        pytest.param(
            "spiffe://cluster.local/ns/*/sa/api",
            "spiffe://cluster.local/ns/a/b/sa/api",
            False,
            id="a middle star never spans two segments",
        ),
        pytest.param(
            "spiffe://cluster.local/ns/web*",
            "spiffe://cluster.local/ns/web-evil/sa/api",
            False,
            id="a star inside a segment stays in that segment",
        ),
        pytest.param(
            "spiffe://cluster.local/ns/web-*/sa/*",
            "spiffe://cluster.local/ns/web-blue/sa/api",
            True,
            id="a star inside a segment matches its rest",
        ),
        pytest.param(
            "spiffe://cluster.local/*",
            "spiffe://cluster.local.evil/ns/web/sa/api",
            False,
            id="the trust domain is matched exactly",
        ),
    ],
)
def test_identity_patterns(pattern: str, identity: str, matches: bool) -> None:
    assert authz.IdentityPattern.parse(pattern).matches(identity) is matches


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        pytest.param(
            "cluster.local/ns/web",
            "identity pattern 'cluster.local/ns/web' must start with 'spiffe://'",
            id="refuse a pattern without the scheme",
        ),
        pytest.param(
            "spiffe://*.local/ns/web",
            "identity pattern 'spiffe://*.local/ns/web': the trust domain '*.local' "
            "contains '*', outside [a-z0-9._-]",
            id="refuse a star in the trust domain",
        ),
        pytest.param(
            "spiffe://cluster.local/ns//sa",
            "identity pattern 'spiffe://cluster.local/ns//sa' has an invalid path segment ''",
            id="refuse an empty segment",
        ),
        pytest.param(
            "spiffe://cluster.local/ns/web?x",
            "identity pattern 'spiffe://cluster.local/ns/web?x' has an invalid path "
            "segment 'web?x'",
            id="refuse characters SPIFFE paths cannot hold",
        ),
    ],
)
def test_invalid_identity_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        authz.IdentityPattern.parse(pattern)


POLICY = workload.Authorizer(
    workload.allow(identity="spiffe://cluster.local/ns/web/*", name="web"),
    workload.allow(claims={"role": "reader"}),
    workload.allow(identity="spiffe://cluster.local/ns/batch/*", claims={"role": "writer"}),
)


@pytest.mark.parametrize(
    ("peer", "decision"),
    [
        pytest.param(
            a_peer(WEB_API),
            workload.Decision(True, f"{WEB_API} allowed by rule 'web'", "web"),
            id="allow by identity",
        ),
        pytest.param(
            a_peer("spiffe://cluster.local/ns/ops/sa/tool", role=["admin", "reader"]),
            workload.Decision(
                True,
                "spiffe://cluster.local/ns/ops/sa/tool allowed by rule 'role=reader'",
                "role=reader",
            ),
            id="allow by a claim that contains the value",
        ),
        pytest.param(
            a_peer("spiffe://cluster.local/ns/batch/sa/job", role=["writer"]),
            workload.Decision(
                True,
                "spiffe://cluster.local/ns/batch/sa/job allowed by rule "
                "'identity=spiffe://cluster.local/ns/batch/*, role=writer'",
                "identity=spiffe://cluster.local/ns/batch/*, role=writer",
            ),
            id="allow when both conditions of one rule hold",
        ),
        pytest.param(
            a_peer("spiffe://cluster.local/ns/ops/sa/tool", role=["writer"]),
            workload.Decision(
                False,
                "spiffe://cluster.local/ns/ops/sa/tool denied: "
                "rule 'web': identity does not match spiffe://cluster.local/ns/web/*; "
                "rule 'role=reader': claim 'role' has writer, not 'reader'; "
                "rule 'identity=spiffe://cluster.local/ns/batch/*, role=writer': "
                "identity does not match spiffe://cluster.local/ns/batch/*",
                None,
            ),
            id="deny when each rule lacks something, saying what",
        ),
        pytest.param(
            a_peer("spiffe://cluster.local/ns/batch/sa/job"),
            workload.Decision(
                False,
                "spiffe://cluster.local/ns/batch/sa/job denied: "
                "rule 'web': identity does not match spiffe://cluster.local/ns/web/*; "
                "rule 'role=reader': claim 'role' is absent (needs 'reader'); "
                "rule 'identity=spiffe://cluster.local/ns/batch/*, role=writer': "
                "claim 'role' is absent (needs 'writer')",
                None,
            ),
            id="deny when a claim is absent",
        ),
        pytest.param(
            a_peer("spiffe://other.domain/ns/web/sa/api", role=["reader"]),
            workload.Decision(
                True,
                "spiffe://other.domain/ns/web/sa/api allowed by rule 'role=reader'",
                "role=reader",
            ),
            id="a claims-only rule does not look at the trust domain",
        ),
    ],
)
def test_decisions(peer: workload.Peer, decision: workload.Decision) -> None:
    assert POLICY.authorize(peer) == decision


def test_a_policy_without_rules_denies_everyone() -> None:
    assert workload.Authorizer().authorize(a_peer()) == workload.Decision(
        False, f"{WEB_API} denied: the policy has no rules", None
    )


def test_require_raises_with_the_denial() -> None:
    with pytest.raises(workload.NotAuthorizedError) as refused:
        workload.Authorizer(workload.allow(claims={"role": "admin"})).require(a_peer())

    assert (refused.value.reason, refused.value.decision) == (
        "NotAuthorized",
        workload.Decision(
            False,
            f"{WEB_API} denied: rule 'role=admin': claim 'role' is absent (needs 'admin')",
            None,
        ),
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {},
            ValueError,
            "a rule needs a condition; to allow every identity of a trust domain, "
            "use identity='spiffe://<trust domain>/*'",
            id="refuse a rule without conditions",
        ),
        pytest.param(
            {"claims": {"role": ["reader", "writer"]}},
            TypeError,
            "claim 'role': give one value as a string, not list; write one rule per alternative",
            id="refuse a list of claim values",
        ),
        pytest.param(
            {"claims": {"role": ""}},
            ValueError,
            "claim 'role': keys and values must be non-empty",
            id="refuse an empty claim value",
        ),
    ],
)
def test_invalid_rules_are_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as refused:
        workload.allow(**kwargs)  # type: ignore[arg-type]

    assert str(refused.value) == message
