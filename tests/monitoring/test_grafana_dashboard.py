"""The Grafana dashboard: the panels SREs need, and PromQL a real Prometheus accepts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring import metric_catalog, prometheus_server

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_PATH = REPO / "deploy" / "monitoring" / "dashboard.json"
# What Grafana would put in place of the template variables when everything is selected.
VARIABLE_VALUES = {
    "namespace": ".*",
    "issuer": ".*",
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
LABEL_VALUES = re.compile(r"label_values\((?P<metric>[^,]+),\s*(?P<label>\w+)\)")


def load_dashboard() -> dict[str, Any]:
    with DASHBOARD_PATH.open(encoding="utf-8") as stream:
        dashboard: dict[str, Any] = json.load(stream)
    return dashboard


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


PANELS = [panel for panel in all_panels(load_dashboard()["panels"]) if panel["type"] != "row"]
TARGETS = [
    (f"{panel['title']} [{target['refId']}]", target)
    for panel in PANELS
    for target in panel["targets"]
]


def substitute_variables(expr: str) -> str:
    """Replace Grafana template variables the way Grafana would with "All" selected.

    Raises:
        KeyError: the expression uses a variable this test does not know.
    """
    return VARIABLE.sub(lambda match: VARIABLE_VALUES[match.group(1) or match.group(2)], expr)


def variable_query_as_promql(query: str) -> str:
    """Turn Grafana's `label_values(metric, label)` into an equivalent PromQL expression."""
    match = LABEL_VALUES.fullmatch(query.strip())
    if match is None:
        return query
    return f"count by ({match['label']}) ({match['metric']})"


REQUIRED_PANELS = [
    ("Time to expiry across the fleet", "bargauge"),
    ("Soonest expiry by namespace and issuer", "table"),
    ("Issuance rate by result", "timeseries"),
    ("Issuance latency", "timeseries"),
    ("Policy denials by reason", "timeseries"),
    ("Issuer CA expiry", "table"),
]


@pytest.mark.parametrize(
    ("panel_title", "panel_type"),
    REQUIRED_PANELS,
    ids=[f"the dashboard has a {kind} panel {title}" for title, kind in REQUIRED_PANELS],
)
def test_the_dashboard_has_the_panels_sres_need(panel_title: str, panel_type: str) -> None:
    assert [panel["type"] for panel in PANELS if panel["title"] == panel_title] == [panel_type]


def test_issuance_latency_is_shown_as_quantiles_of_the_histogram() -> None:
    (latency,) = [panel for panel in PANELS if panel["title"] == "Issuance latency"]
    exprs = [target["expr"] for target in latency["targets"]]
    assert [expr.split(",")[0] for expr in exprs] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.9",
        "histogram_quantile(0.99",
    ]


def test_every_panel_queries_the_selected_data_source() -> None:
    sources = {json.dumps(panel["datasource"], sort_keys=True) for panel in PANELS}
    sources |= {json.dumps(target["datasource"], sort_keys=True) for _, target in TARGETS}
    assert sources == {json.dumps({"type": "prometheus", "uid": "${datasource}"}, sort_keys=True)}


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    every_panel = list(all_panels(load_dashboard()["panels"]))
    cells = [
        (x, y)
        for panel in every_panel
        for x in range(panel["gridPos"]["x"], panel["gridPos"]["x"] + panel["gridPos"]["w"])
        for y in range(panel["gridPos"]["y"], panel["gridPos"]["y"] + panel["gridPos"]["h"])
    ]
    assert (
        len({panel["id"] for panel in every_panel}) == len(every_panel),
        len(set(cells)) == len(cells),
        max(x for x, _ in cells) < 24,
    ) == (True, True, True)


@pytest.mark.parametrize(
    ("where", "target"),
    TARGETS,
    ids=[f"{where} names only exported metrics" for where, _ in TARGETS],
)
def test_every_expression_names_only_metrics_certmint_exports(
    where: str, target: dict[str, Any]
) -> None:
    assert metric_catalog.unknown_metrics(target["expr"]) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("where", "target"), TARGETS, ids=[f"Prometheus accepts {where}" for where, _ in TARGETS]
)
def test_prometheus_accepts_every_panel_expression(
    prometheus: prometheus_server.PrometheusServer, where: str, target: dict[str, Any]
) -> None:
    expr = substitute_variables(target["expr"])
    response = prometheus.query(expr) if target.get("instant") else prometheus.query_range(expr)
    assert (response.status_code, response.body.get("error")) == (200, None), expr


@pytest.mark.timeout(60)
def test_prometheus_accepts_every_template_variable_query(
    prometheus: prometheus_server.PrometheusServer,
) -> None:
    variables = [
        variable
        for variable in load_dashboard()["templating"]["list"]
        if variable["type"] == "query"
    ]
    answers = {
        variable["name"]: prometheus.query(variable_query_as_promql(variable["query"]["query"]))
        for variable in variables
    }
    assert {name: response.status_code for name, response in answers.items()} == {
        "namespace": 200,
        "issuer": 200,
    }


@pytest.mark.timeout(60)
def test_a_broken_expression_is_refused_so_the_parse_check_can_fail(
    prometheus: prometheus_server.PrometheusServer,
) -> None:
    response = prometheus.query("sum by (le (rate(certmint_issuance_total[5m]))")
    assert (response.status_code, response.body["errorType"]) == (400, "bad_data")
