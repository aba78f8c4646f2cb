"""Authorization on a peer's identity and claims: a small declarative policy.

A policy is an `Authorizer` built from `allow` rules. A peer is allowed when at least
one rule holds for it; a rule holds when every condition in it holds. With no rule
holding (or no rules at all) the peer is denied, and the `Decision` says why each
rule did not hold.

Identity patterns are SPIFFE IDs in which ``*`` stands for part of one path segment,
and a final lone ``*`` segment stands for one or more segments:

==================================  ===========================================
``spiffe://td/ns/web/sa/api``       exactly that identity
``spiffe://td/ns/web/*``            every identity under ``/ns/web/``
``spiffe://td/ns/*/sa/api``         ServiceAccount ``api`` in any namespace
``spiffe://td/ns/web-*/sa/*``       any ServiceAccount in namespaces ``web-...``
==================================  ===========================================

The trust domain is always matched exactly, and ``*`` never crosses a ``/`` except
as that final segment, so ``spiffe://td/ns/web*`` cannot match ``/ns/web-evil/...``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from certmint.pki import errors as pki_errors
from certmint.pki import spiffe
from certmint.workload import errors, peers

_SEGMENT = re.compile(r"[A-Za-z0-9._*-]+")


@dataclasses.dataclass(frozen=True)
class IdentityPattern:
    """A SPIFFE ID pattern (see the module docstring).

    Attributes:
        text: The pattern as written.
    """

    text: str
    _regex: re.Pattern[str] = dataclasses.field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> IdentityPattern:
        """Compile a pattern.

        Args:
            text: e.g. ``"spiffe://cluster.local/ns/web/*"``.

        Returns:
            The pattern.

        Raises:
            ValueError: The text is not a SPIFFE ID with ``*`` only in path segments.
        """
        if not text.startswith(spiffe.SCHEME_PREFIX):
            raise ValueError(f"identity pattern {text!r} must start with {spiffe.SCHEME_PREFIX!r}")
        rest = text[len(spiffe.SCHEME_PREFIX) :]
        trust_domain, slash, path = rest.partition("/")
        try:
            spiffe.validate_trust_domain(trust_domain, "identity")
        except pki_errors.PKIError as err:
            raise ValueError(f"identity pattern {text!r}: {err.message}") from None
        segments = path.split("/") if slash else []
        parts = [re.escape(spiffe.SCHEME_PREFIX + trust_domain)]
        for index, segment in enumerate(segments):
            if not _SEGMENT.fullmatch(segment) or segment in {".", ".."}:
                raise ValueError(
                    f"identity pattern {text!r} has an invalid path segment {segment!r}"
                )
            if segment == "*" and index == len(segments) - 1:
                parts.append(r"(?:/[^/]+)+")
            else:
                parts.append("/" + "[^/]*".join(re.escape(p) for p in segment.split("*")))
        return cls(text, re.compile("".join(parts)))

    def matches(self, spiffe_id: str) -> bool:
        """Whether a SPIFFE ID matches the pattern."""
        return self._regex.fullmatch(spiffe_id) is not None

    def __str__(self) -> str:
        return self.text


@dataclasses.dataclass(frozen=True)
class Rule:
    """One ``allow`` rule: every condition in it must hold.

    Attributes:
        name: Shown in decisions, e.g. ``"web frontends"``.
        identity: The pattern the peer's SPIFFE ID must match, if any.
        claims: ``(key, value)`` pairs: the claim ``key`` must contain ``value``.
    """

    name: str
    identity: IdentityPattern | None
    claims: tuple[tuple[str, str], ...]

    def unmet(self, peer: peers.Peer) -> list[str]:
        """The conditions of this rule the peer does not meet.

        Args:
            peer: The authenticated peer.

        Returns:
            One phrase per unmet condition; empty when the rule holds.
        """
        unmet: list[str] = []
        if self.identity is not None and not self.identity.matches(peer.identity):
            unmet.append(f"identity does not match {self.identity}")
        for key, value in self.claims:
            values = peer.claims.get(key)
            if values is None:
                unmet.append(f"claim {key!r} is absent (needs {value!r})")
            elif value not in values:
                unmet.append(f"claim {key!r} has {', '.join(values)}, not {value!r}")
        return unmet


def allow(
    *,
    identity: str | None = None,
    claims: Mapping[str, str] | None = None,
    name: str | None = None,
) -> Rule:
    """A rule allowing peers that meet all of its conditions.

    Args:
        identity: A SPIFFE ID pattern the peer's identity must match.
        claims: Claim key to a value the claim must contain. One value per key; for
            "reader or writer", write two rules.
        name: A name for decisions and logs; default: the conditions themselves.

    Returns:
        The rule.

    Raises:
        ValueError: No condition given, a bad identity pattern, or an empty claim
            key or value.
        TypeError: A claim value that is not a single string.
    """
    pattern = None if identity is None else IdentityPattern.parse(identity)
    pairs: list[tuple[str, str]] = []
    for key, value in sorted((claims or {}).items()):
        if not isinstance(value, str):
            raise TypeError(
                f"claim {key!r}: give one value as a string, not {type(value).__name__}; "
                "write one rule per alternative"
            )
        if not key or not value:
            raise ValueError(f"claim {key!r}: keys and values must be non-empty")
        pairs.append((key, value))
    if pattern is None and not pairs:
        raise ValueError(
            "a rule needs a condition; to allow every identity of a trust domain, "
            "use identity='spiffe://<trust domain>/*'"
        )
    conditions = ([f"identity={pattern}"] if pattern else []) + [f"{k}={v}" for k, v in pairs]
    return Rule(name or ", ".join(conditions), pattern, tuple(pairs))


@dataclasses.dataclass(frozen=True)
class Decision:
    """The outcome of `Authorizer.authorize`.

    Attributes:
        allowed: Whether the peer may proceed.
        reason: Why, in one line naming the peer.
        rule: The name of the rule that allowed the peer; ``None`` when denied.
    """

    allowed: bool
    reason: str
    rule: str | None


class NotAuthorizedError(errors.WorkloadError):
    """Raised by `Authorizer.require` on denial.

    Attributes:
        decision: The denial.
    """

    decision: Decision

    def __init__(self, decision: Decision) -> None:
        """Create the error.

        Args:
            decision: The denial.
        """
        super().__init__("NotAuthorized", decision.reason)
        self.decision = decision


class Authorizer:
    """A default-deny policy: a peer is allowed when at least one rule holds."""

    __slots__ = ("_rules",)

    def __init__(self, *rules: Rule) -> None:
        """Create the policy.

        Args:
            *rules: Rules from `allow`, tried in order; the first that holds wins.
        """
        self._rules = rules

    def __repr__(self) -> str:
        return f"Authorizer({', '.join(repr(rule.name) for rule in self._rules)})"

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in order."""
        return self._rules

    def authorize(self, peer: peers.Peer) -> Decision:
        """Decide whether a peer is allowed.

        Args:
            peer: The authenticated peer (see `certmint.workload.peer`).

        Returns:
            The decision; a denial's reason lists what each rule lacked.
        """
        if not self._rules:
            return Decision(False, f"{peer.identity} denied: the policy has no rules", None)
        failures: list[str] = []
        for rule in self._rules:
            unmet = rule.unmet(peer)
            if not unmet:
                return Decision(True, f"{peer.identity} allowed by rule {rule.name!r}", rule.name)
            failures.append(f"rule {rule.name!r}: {' and '.join(unmet)}")
        return Decision(False, f"{peer.identity} denied: {'; '.join(failures)}", None)

    def require(self, peer: peers.Peer) -> Decision:
        """Like `authorize`, but raise on denial.

        Args:
            peer: The authenticated peer.

        Returns:
            The allowing decision.

        Raises:
            NotAuthorizedError: The peer is denied; ``decision`` says why.
        """
        decision = self.authorize(peer)
        if not decision.allowed:
            raise NotAuthorizedError(decision)
        return decision
