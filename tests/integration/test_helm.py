"""The Helm chart (deploy/helm/certmint): lint, and the same objects as the kustomize base.

`helm template` and `kubectl kustomize` render offline; the comparison is exact except for
the fields listed in HELM_ONLY_LABELS (Helm's release labels) and the Namespace, which
Helm does not own (`helm install --create-namespace`, docs/install.md).
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import BIN, ROOT

CHART = ROOT / "deploy" / "helm" / "certmint"
# The only fields the chart adds to the kustomize base's objects: Helm's release labels.
HELM_ONLY_LABELS = {
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
}
Key = tuple[str, str, str]


def run(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, cwd=cwd)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return done.stdout


def objects(text: str) -> dict[Key, dict[str, Any]]:
    found: dict[Key, dict[str, Any]] = {}
    for doc in yaml.safe_load_all(text):
        if doc:
            meta = doc["metadata"]
            found[(doc["kind"], meta.get("namespace", ""), meta["name"])] = doc
    return found


def helm_template(*values: str, namespace: str = "certmint-system", crds: bool = False) -> str:
    sets = [arg for value in values for arg in ("--set", value)]
    extra = ["--include-crds"] if crds else []
    return run(
        str(BIN / "helm"), "template", "certmint", str(CHART), "-n", namespace, *sets, *extra
    )


def without_helm_labels(doc: dict[str, Any]) -> dict[str, Any]:
    labels = doc["metadata"].get("labels", {})
    for key in HELM_ONLY_LABELS:
        assert key in labels, f"{doc['kind']} {doc['metadata']['name']} lacks the label {key}"
        del labels[key]
    return doc


def assert_same_objects(helm: str, kustomize: str, skips: frozenset[str] = frozenset()) -> None:
    rendered = {
        key: without_helm_labels(doc) for key, doc in objects(helm).items() if key[0] not in skips
    }
    expected = {key: doc for key, doc in objects(kustomize).items() if key[0] not in skips}
    assert sorted(rendered) == sorted(expected)
    for key, doc in expected.items():
        assert rendered[key] == doc, key


def test_helm_lint_strict_passes() -> None:
    out = run(str(BIN / "helm"), "lint", "--strict", str(CHART))

    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(["replicas=0"], "at '/replicas': minimum: got 0, want 1",
                     id="the schema refuses zero replicas"),
        pytest.param(["scope=everywhere"], "at '/scope': value must be one of 'cluster'",
                     id="the schema refuses an unknown scope"),
        pytest.param(["imagee.tag=x"], "additional properties 'imagee' not allowed",
                     id="the schema refuses a misspelt value"),
    ],
)  # fmt: skip
def test_the_values_schema_refuses_bad_values(values: list[str], expected: str) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    done = subprocess.run(
        [str(BIN / "helm"), "template", "certmint", str(CHART), *sets],
        capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert done.returncode != 0
    assert expected in done.stderr


def test_the_chart_renders_the_cluster_wide_kustomize_base() -> None:
    kustomize = run(str(BIN / "kubectl"), "kustomize", str(ROOT / "deploy"))

    # The Namespace is not Helm's (`--create-namespace`); the CRDs are compared verbatim below.
    skips = frozenset({"Namespace", "CustomResourceDefinition"})
    kinds = {key[0] for key in objects(kustomize)}

    assert skips <= kinds
    assert_same_objects(helm_template(crds=True), kustomize, skips)


def test_the_namespaced_scope_renders_the_namespaced_overlay() -> None:
    kustomize = run(str(BIN / "kubectl"), "kustomize", str(ROOT / "deploy/overlays/namespaced"))
    helm = helm_template("scope=namespaced", namespace="certmint")

    assert_same_objects(helm, kustomize)


def test_monitoring_renders_the_rules_dashboard_and_service_monitor(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(ROOT / "deploy/monitoring", tmp_path)],
            "components": [os.path.relpath(ROOT / "deploy/monitoring/servicemonitor", tmp_path)],
        })
    )  # fmt: skip
    kustomize = objects(run(str(BIN / "kubectl"), "kustomize", str(tmp_path)))
    # kubectl kustomize adds a blank line inside one alert's block scalar (a kyaml quirk);
    # the rule file itself is the source the chart must reproduce.
    rule = yaml.safe_load((ROOT / "deploy/monitoring/prometheusrule.yaml").read_text())
    kustomize[("PrometheusRule", "certmint-system", "certmint")] = rule
    helm = helm_template(
        "monitoring.prometheusRule.enabled=true",
        "monitoring.dashboard.enabled=true",
        "monitoring.serviceMonitor.enabled=true",
    )
    monitoring = {"PrometheusRule", "ConfigMap", "ServiceMonitor"}
    only = "\n---\n".join(
        yaml.safe_dump(doc) for key, doc in objects(helm).items() if key[0] in monitoring
    )

    assert_same_objects(only, "\n---\n".join(yaml.safe_dump(doc) for doc in kustomize.values()))


def test_the_crds_come_from_the_one_source_in_crds() -> None:
    assert (CHART / "crds").resolve() == (ROOT / "crds").resolve()
    rendered = {
        k: v for k, v in objects(helm_template(crds=True)).items() if k[0].endswith("Definition")
    }
    source = objects("\n---\n".join(p.read_text() for p in sorted((ROOT / "crds").glob("*.yaml"))))

    assert rendered == source


def test_values_reach_the_deployment() -> None:
    helm = objects(
        helm_template(
            "image.repository=registry.example/certmint",
            "image.tag=9.9.9",
            "replicas=3",
            "logFormat=text",
            "renewalRate=5",
            "extraArgs={--verbose}",
            "nodeSelector.pool=system",
            "tolerations[0].key=dedicated",
            "tolerations[0].operator=Exists",
            "resources.limits.memory=1Gi",
        )
    )
    deployment = helm[("Deployment", "certmint-system", "certmint")]["spec"]
    pod = deployment["template"]["spec"]
    container = pod["containers"][0]

    assert deployment["replicas"] == 3
    assert container["image"] == "registry.example/certmint:9.9.9"
    assert container["args"] == [
        "-A", "--metrics-port", "9403", "--log-format", "text", "--renewal-rate", "5", "--verbose",
    ]  # fmt: skip
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert container["resources"]["limits"]["memory"] == "1Gi"


def test_helm_package_carries_the_linked_sources_and_not_the_kustomization(
    tmp_path: Path,
) -> None:
    run(str(BIN / "helm"), "package", str(CHART), "-d", str(tmp_path))
    with tarfile.open(tmp_path / "certmint-0.1.0.tgz") as archive:
        names = set(archive.getnames())
        crd = archive.extractfile("certmint/crds/certificates.yaml")
        assert crd is not None
        packaged = crd.read()

    assert packaged == (ROOT / "crds" / "certificates.yaml").read_bytes()
    assert {"certmint/files/dashboard.json", "certmint/files/prometheusrule.yaml"} <= names
    assert "certmint/crds/Kustomization" not in names
