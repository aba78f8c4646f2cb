"""The pattern language issuer policies are written in (docs/policy.md).

Patterns are text with ``*`` (``**`` for URIs) and the placeholders ``{namespace}`` and
``{serviceAccount}``; `compile_glob` turns one into a regular expression for a requester
and `check_glob` refuses a pattern malformed for its kind. `certmint.core.policy`
applies them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Literal, TypeAlias

from certmint.api import fields
from certmint.pki import names as pki_names

GlobKind: TypeAlias = Literal["namespace", "dns", "uri", "email", "subject"]
PLACEHOLDERS: Final = ("{namespace}", "{serviceAccount}")
_GLOB_TOKEN = re.compile(r"\*\*|\*|\{[^{}]*\}|[^*{}]+|[{}]")


def tokenize_glob(pattern: str) -> tuple[str, ...]:
    """Split a policy pattern into literal text, ``*``, ``**`` and placeholders.

    Args:
        pattern: A pattern such as ``"*.{namespace}.svc"``.

    Returns:
        The tokens in order; joined they give the pattern back.

    Raises:
        ValueError: An unknown placeholder, a stray brace, or three stars in a row.
    """
    parts = tuple(_GLOB_TOKEN.findall(pattern))
    for index, part in enumerate(parts):
        if part in {"{", "}"}:
            raise ValueError(f'has an unmatched "{part}"')
        if part.startswith("{") and part not in PLACEHOLDERS:
            raise ValueError(
                f"has the unknown placeholder {part}; use {{namespace}} or {{serviceAccount}}"
            )
        if part.startswith("*") and index and parts[index - 1].startswith("*"):
            raise ValueError('has more than two "*" in a row')
    return parts


@functools.lru_cache(maxsize=4096)
def compile_glob(
    pattern: str, kind: GlobKind, namespace: str = "", service_account: str | None = None
) -> re.Pattern[str] | None:
    """Turn a validated policy pattern into a regular expression for one requester.

    Placeholders are replaced by the escaped namespace and ServiceAccount name first,
    so those values only ever match themselves. What ``*`` may cross depends on kind:

    - ``dns``: ``*`` stays inside one label (never a "."), like a wildcard certificate;
      matching ignores case.
    - ``uri``: ``*`` never crosses ``/ ? # @ :``; ``**`` matches anything.
    - ``email``: ``*`` never crosses "@", and after the "@" never a "." either;
      matching ignores case.
    - ``namespace``: ``*`` matches anything.

    Args:
        pattern: A pattern accepted by `IssuerSpec.from_body`.
        kind: Which kind of name the pattern is for.
        namespace: The requesting Certificate's namespace.
        service_account: Its ServiceAccount name, if it asks for an identity.

    Returns:
        The compiled expression, or None when the pattern uses ``{serviceAccount}``
        and there is none (such a pattern matches nothing).

    Raises:
        ValueError: The pattern does not tokenize (see `tokenize_glob`).
    """
    expression: list[str] = []
    after_at = False
    for part in tokenize_glob(pattern):
        if part == PLACEHOLDERS[0]:
            expression.append(re.escape(namespace))
        elif part == PLACEHOLDERS[1]:
            if service_account is None:
                return None
            expression.append(re.escape(service_account))
        elif part.startswith("**"):
            expression.append(".*")
        elif part.startswith("*"):
            expression.append(_star(kind, after_at=after_at))
        else:
            after_at = after_at or "@" in part
            expression.append(re.escape(part))
    flags = re.IGNORECASE if kind in {"dns", "email"} else 0
    return re.compile("".join(expression), flags | re.DOTALL)


def _star(kind: GlobKind, *, after_at: bool) -> str:
    if kind == "dns":
        return r"[^.]*"
    if kind == "uri":
        return r"[^/?#@:]*"
    if kind == "email":
        return r"[^@.]*" if after_at else r"[^@]*"
    return ".*"


def glob_matches(
    patterns: Sequence[str],
    kind: GlobKind,
    text: str,
    *,
    namespace: str = "",
    service_account: str | None = None,
) -> bool:
    """Whether any of the patterns matches the whole text.

    Args:
        patterns: Validated policy patterns.
        kind: Which kind of name they are for (see `compile_glob`).
        text: The requested name.
        namespace: The requesting namespace, for ``{namespace}``.
        service_account: The requesting ServiceAccount, for ``{serviceAccount}``.

    Returns:
        True when one pattern matches.
    """
    for pattern in patterns:
        compiled = compile_glob(pattern, kind, namespace, service_account)
        if compiled is not None and compiled.fullmatch(text):
            return True
    return False


def render_glob(pattern: str, namespace: str, service_account: str | None = None) -> str:
    """Show a pattern as it applies to one requester, placeholders filled in.

    Args:
        pattern: A validated policy pattern.
        namespace: The requesting namespace.
        service_account: The requesting ServiceAccount; without one,
            ``{serviceAccount}`` stays as written.

    Returns:
        The pattern text with placeholders substituted.
    """
    text = pattern.replace("{namespace}", namespace)
    if service_account is not None:
        text = text.replace("{serviceAccount}", service_account)
    return text


def check_glob(pattern: str, kind: GlobKind | Literal["claim"], field: str) -> None:
    """Refuse a policy pattern that is malformed for its kind."""
    try:
        parts = tokenize_glob(pattern)
    except ValueError as error:
        raise fields.SpecError(field, f"{fields.quote(pattern)} {error}") from None
    if not parts:
        raise fields.SpecError(field, "must not be empty")
    if "**" in parts and kind != "uri":
        raise fields.SpecError(
            field, f'{fields.quote(pattern)}: "**" is only for URI patterns; use "*"'
        )
    problem = _GLOB_PROBLEMS[kind](pattern, parts)
    if problem is not None:
        raise fields.SpecError(field, f"{fields.quote(pattern)} {problem}")


def _literal(parts: tuple[str, ...]) -> str:
    return "".join(part for part in parts if not part.startswith(("*", "{")))


def _namespace_glob_problem(_: str, parts: tuple[str, ...]) -> str | None:
    if any(part.startswith("{") for part in parts) or not re.fullmatch(
        r"[a-z0-9-]*", _literal(parts)
    ):
        return 'is not a namespace pattern; use lowercase letters, digits, "-" and "*"'
    return None


def _dns_glob_problem(_: str, parts: tuple[str, ...]) -> str | None:
    sample = "".join("x" if part.startswith(("*", "{")) else part for part in parts)
    if not re.fullmatch(r"[a-z0-9.-]*", _literal(parts)) or not fields.is_dns_name(sample):
        return (
            'is not a DNS name pattern; use lowercase labels separated by ".", '
            'with "*", {namespace} or {serviceAccount} inside a label'
        )
    return None


def _uri_glob_problem(pattern: str, parts: tuple[str, ...]) -> str | None:
    scheme, colon, _ = parts[0].partition(":")
    if not colon or not fields.URI_SCHEME.fullmatch(scheme) or fields.has_bad_uri_chars(pattern):
        return 'is not a URI pattern; it must start with a literal scheme such as "https:"'
    if scheme.lower() == "spiffe":
        return (
            "is a SPIFFE ID pattern; identities are derived from the namespace and "
            "ServiceAccount and cannot be allowed as extra URIs"
        )
    return None


def _email_glob_problem(pattern: str, parts: tuple[str, ...]) -> str | None:
    if _literal(parts).count("@") != 1 or fields.has_bad_uri_chars(pattern):
        return 'is not an email pattern; write "local@domain"'
    return None


def _subject_glob_problem(pattern: str, _: tuple[str, ...]) -> str | None:
    if not pattern.strip():
        return "is blank"
    character = pki_names.unprintable_character(pattern)
    if character is not None:
        return f"contains the unprintable character {character}"
    return None


def _claim_value_problem(_: str, parts: tuple[str, ...]) -> str | None:
    if "*" in parts and parts != ("*",):
        return 'uses "*" inside a value; "*" only stands alone, meaning any value'
    return None


_GLOB_PROBLEMS: Final[Mapping[str, Callable[[str, tuple[str, ...]], str | None]]] = {
    "namespace": _namespace_glob_problem,
    "dns": _dns_glob_problem,
    "uri": _uri_glob_problem,
    "email": _email_glob_problem,
    "subject": _subject_glob_problem,
    "claim": _claim_value_problem,
}


def parse_globs(
    value: object, field: str, kind: GlobKind | Literal["claim"], default: tuple[str, ...]
) -> tuple[str, ...]:
    """A list of unique patterns, each checked for its kind; absent gives the default."""
    if value is None:
        return default
    patterns = fields.unique(value, field)
    for index, pattern in enumerate(patterns):
        check_glob(pattern, kind, f"{field}[{index}]")
    return patterns
