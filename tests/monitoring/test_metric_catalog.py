"""The metric names the alerts and dashboard rely on are the ones the operator exports."""

from __future__ import annotations

from certmint.core import state
from certmint.runtime import health, metrics, scheduler
from tests.monitoring import metric_catalog

EXPOSITION_SUFFIX = {"counter": "_total", "gauge": "", "histogram": ""}


def test_the_operator_exports_exactly_the_catalogued_metrics() -> None:
    collector = metrics.StoreCollector(
        state.Store(),
        health.WatchHealth(),
        lambda: True,
        queues={"certificates": scheduler.WorkQueue(rate=1.0, burst=1)},
    )
    families = [
        *collector.collect(),
        *metrics.ISSUANCE_TOTAL.collect(),
        *metrics.ISSUANCE_DURATION.collect(),
        *metrics.POLICY_DENIALS.collect(),
    ]
    exported = {
        family.name + EXPOSITION_SUFFIX[family.type]
        for family in families
        if family.type != "histogram"
    }
    histograms = {family.name for family in families if family.type == "histogram"}
    assert (exported, histograms) == (
        set(metric_catalog.CERTMINT_METRICS),
        set(metric_catalog.CERTMINT_HISTOGRAMS),
    )
