"""The metric names certmint exports, as fixed by the product contract (DESIGN.md).

Used to catch a misspelt metric in an alert or dashboard expression: such an expression
parses and simply returns nothing, which no parser check would notice.
"""

from __future__ import annotations

import re

CERTMINT_METRICS = frozenset(
    {
        "certmint_certificate_ready_status",
        "certmint_certificate_not_after_timestamp_seconds",
        "certmint_certificate_renewal_timestamp_seconds",
        "certmint_certificates",
        "certmint_certificates_expiring",
        "certmint_certificates_renewal_overdue",
        "certmint_certificates_earliest_not_after_timestamp_seconds",
        "certmint_issuer_ready_status",
        "certmint_ca_not_after_timestamp_seconds",
        "certmint_issuance_total",
        "certmint_policy_denials_total",
        "certmint_watch_last_event_age_seconds",
        "certmint_leader",
        "certmint_cache_synced",
        "certmint_workqueue_depth",
        "certmint_workqueue_scheduled",
    }
)
CERTMINT_HISTOGRAMS = frozenset({"certmint_issuance_duration_seconds"})
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_CERTMINT_NAME = re.compile(r"\bcertmint_[a-zA-Z0-9_]+")


def unknown_metrics(expr: str) -> list[str]:
    """List the certmint_* names in a PromQL expression that certmint does not export.

    Args:
        expr: a PromQL expression.

    Returns:
        The unknown names, sorted; empty when every name is known. Does not check
        non-certmint metrics (such as `up`) or label names.
    """
    known = set(CERTMINT_METRICS)
    known.update(name + suffix for name in CERTMINT_HISTOGRAMS for suffix in HISTOGRAM_SUFFIXES)
    return sorted(set(_CERTMINT_NAME.findall(expr)) - known)
