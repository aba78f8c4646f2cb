"""The PrometheusRule in deploy/monitoring, checked and unit-tested by the real promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring import metric_catalog, prometheus_server

REPO = Path(__file__).resolve().parents[2]
RULE_PATH = REPO / "deploy" / "monitoring" / "prometheusrule.yaml"
RUNBOOK_PATH = REPO / "docs" / "observability.md"
UNIT_TEST_DIR = Path(__file__).resolve().parent / "rules"
UNIT_TEST_FILES = sorted(UNIT_TEST_DIR.glob("*.yaml"))
PROMTOOL_TIMEOUT_S = 60
EXPECTED_ALERTS = {
    "CertificateNotReady",
    "CertificateRenewalOverdue",
    "CertificateExpired",
    "IssuerNotReady",
    "CAExpiringSoon",
    "IssuanceErrorsHigh",
    "OperatorDown",
}


def load_prometheus_rule() -> dict[str, Any]:
    with RULE_PATH.open(encoding="utf-8") as stream:
        document: dict[str, Any] = yaml.safe_load(stream)
    return document


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for group in load_prometheus_rule()["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


ALERTS = {rule["alert"]: rule for rule in alert_rules()}


def unit_test_cases(alertname: str) -> list[list[dict[str, Any]]]:
    """Every `exp_alerts` list that the unit test files assert for one alert."""
    documents = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in UNIT_TEST_FILES]
    return [
        check.get("exp_alerts") or []
        for document in documents
        for test in document["tests"]
        for check in test.get("alert_rule_test", [])
        if check["alertname"] == alertname
    ]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub derives from a Markdown document's headings."""
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"#+\s+(.*)", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def run_promtool(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A directory with rules.yaml (the PrometheusRule's groups) beside the unit tests."""
    prometheus_server.write_rules_file(RULE_PATH, tmp_path / "rules.yaml")
    for path in UNIT_TEST_FILES:
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_the_prometheus_rule_is_a_prometheus_operator_object_in_certmint_system() -> None:
    document = load_prometheus_rule()
    assert (document["apiVersion"], document["kind"], document["metadata"]["namespace"]) == (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        "certmint-system",
    )


def test_the_issue_s_alerts_are_all_defined() -> None:
    assert set(ALERTS) >= EXPECTED_ALERTS


@pytest.mark.timeout(PROMTOOL_TIMEOUT_S * 2)
def test_promtool_check_rules_accepts_the_rules(promtool: Path, rules_dir: Path) -> None:
    result = run_promtool(promtool, "check", "rules", "rules.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@pytest.mark.timeout(PROMTOOL_TIMEOUT_S * 2)
@pytest.mark.parametrize(
    "unit_test_file",
    UNIT_TEST_FILES,
    ids=[f"promtool test rules passes {path.stem}" for path in UNIT_TEST_FILES],
)
def test_promtool_unit_tests_pass(promtool: Path, rules_dir: Path, unit_test_file: Path) -> None:
    result = run_promtool(promtool, "test", "rules", unit_test_file.name, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alertname", sorted(ALERTS), ids=lambda name: f"{name} is unit-tested")
def test_every_alert_has_a_firing_and_a_quiet_unit_test(alertname: str) -> None:
    cases = unit_test_cases(alertname)
    assert (any(cases), any(not case for case in cases)) == (True, True), (
        f"{alertname} needs a promtool case where it fires and one where it stays quiet"
    )


@pytest.mark.parametrize(
    "alertname", sorted(ALERTS), ids=lambda name: f"{name} has a runbook and a severity"
)
def test_every_alert_has_a_severity_a_summary_and_a_runbook_section(alertname: str) -> None:
    rule = ALERTS[alertname]
    runbook = rule["annotations"]["runbook"]
    anchors = github_anchors(RUNBOOK_PATH.read_text(encoding="utf-8"))
    assert (
        rule["labels"]["severity"] in {"warning", "critical"},
        bool(rule["annotations"]["summary"]),
        runbook == f"docs/observability.md#{alertname.lower()}",
        alertname.lower() in anchors,
    ) == (True, True, True, True)


@pytest.mark.parametrize(
    "alertname", sorted(ALERTS), ids=lambda name: f"{name} names only exported metrics"
)
def test_every_alert_names_only_metrics_certmint_exports(alertname: str) -> None:
    assert metric_catalog.unknown_metrics(ALERTS[alertname]["expr"]) == []


def test_every_unit_test_file_is_about_an_alert_that_exists() -> None:
    tested: set[str] = set()
    for path in UNIT_TEST_FILES:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        tested.update(
            check["alertname"] for test in document["tests"] for check in test["alert_rule_test"]
        )
    assert tested == set(ALERTS)
