"""The manifests parse, lint, render and validate against the real schemas, offline.

- yamllint on every YAML file of devops/ and the two docker-compose files;
- `kubectl kustomize devops/kubernetes` renders exactly the manifests, in the deployment order
  (without kubectl on PATH, a pure-Python reading of kustomization.yaml's resources list);
- kubernetes-validate --strict against Kubernetes 1.25 and the newest version it ships, where
  a missing schema for a built-in kind is a failure;
- every custom resource against the upstream CRDs in ../shared/crds: JSON Schema with unknown
  fields refused, defaults applied, CEL rules evaluated (crdcheck.py says what it cannot do).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from crdcheck import CustomResources
from devopslib import (
    DEPLOYMENT_ORDER,
    DEVOPS,
    KUBERNETES,
    ROOT,
    all_documents,
    deployed_documents,
    load_documents,
)
from kubernetes_validate.utils import SchemaNotFoundError, all_versions
from yamllint import linter
from yamllint.config import YamlLintConfig

MIN_KUBERNETES = "1.25.0"
NEWEST_KUBERNETES = all_versions()[-1]


def yaml_files() -> list[Path]:
    files = sorted(p for p in DEVOPS.rglob("*") if p.suffix in {".yaml", ".yml"})
    return [*files, ROOT / "docker-compose.yml", ROOT / "docker-compose.observability.yml"]


def test_yamllint_is_clean() -> None:
    config = YamlLintConfig(file=str(DEVOPS / ".yamllint.yml"))
    problems = []
    for path in yaml_files():
        assert path.exists(), path
        for problem in linter.run(path.read_text(), config, str(path)):
            problems.append(f"{path.relative_to(ROOT)}:{problem.line}:{problem.column} {problem}")
    assert problems == []


def test_kustomization_lists_the_manifests_in_deployment_order() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert kustomization["resources"] == DEPLOYMENT_ORDER
    # kustomize sorts by kind unless told to keep the order it was given.
    assert kustomization["sortOptions"] == {"order": "fifo"}
    listed = {KUBERNETES / name for name in DEPLOYMENT_ORDER}
    on_disk = {
        p
        for p in KUBERNETES.rglob("*.yaml")
        if p.name not in {"kustomization.yaml", "secrets.template.yaml", "argocd-application.yaml"}
    }
    assert on_disk == listed, "every manifest is in kustomization.yaml, or excluded on purpose"


def test_kubectl_kustomize_renders_every_object_in_order() -> None:
    """Rendered by the real kustomize inside kubectl where there is one (this kind of machine
    comes with kubectl 1.32, kustomize v5). Without kubectl (Debian's kubernetes-client is
    1.20, too old for sortOptions) the test reads kustomization.yaml's resources in order
    itself: that proves the list and the order, not kustomize's own parsing."""
    expected = [(d["kind"], d["metadata"]["name"]) for d in deployed_documents()]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
        rendered = [
            d for name in kustomization["resources"] for d in load_documents(KUBERNETES / name)
        ]
    else:
        result = subprocess.run(
            [kubectl, "kustomize", str(KUBERNETES)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        rendered = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [(d["kind"], d["metadata"]["name"]) for d in rendered] == expected
    # kustomize changes nothing in our objects: no generated names, no injected fields.
    assert rendered == deployed_documents()


@pytest.mark.parametrize("version", [MIN_KUBERNETES, NEWEST_KUBERNETES])
def test_built_in_kinds_validate_strictly(version: str, custom_resources: CustomResources) -> None:
    custom_groups = custom_resources.groups()
    failures = []
    validated = set()
    for doc in all_documents():
        group = doc["apiVersion"].rpartition("/")[0]
        if group in custom_groups:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            validated.add(doc["kind"])
        except SchemaNotFoundError as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")
    assert failures == []
    assert validated == {
        "ConfigMap",
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "NetworkPolicy",
        "Deployment",
        "Service",
        "Secret",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


def test_custom_resources_validate_against_upstream_crds(
    custom_resources: CustomResources,
) -> None:
    custom_groups = custom_resources.groups()
    kinds = set()
    evaluated = 0
    failures: list[str] = []
    for doc in all_documents():
        if doc["apiVersion"].rpartition("/")[0] not in custom_groups:
            continue
        kinds.add(doc["kind"])
        report = custom_resources.validate(doc)
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        failures += [f"{name}: {error}" for error in report.errors]
        failures += [f"{name}: CEL not evaluated: {rule}" for rule in report.unsupported]
        evaluated += len(report.evaluated)
    assert failures == []
    assert kinds == {
        "GatewayClass",
        "Gateway",
        "HTTPRoute",
        "EnvoyProxy",
        "ClientTrafficPolicy",
        "BackendTrafficPolicy",
        "ServiceMonitor",
        "PrometheusRule",
        "Application",
    }
    assert evaluated > 100, "the CRDs' CEL rules on our objects' paths were evaluated"


def one(kind: str, name: str) -> dict[str, Any]:
    for doc in all_documents():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return copy.deepcopy(doc)
    raise AssertionError((kind, name))


def errors(custom_resources: CustomResources, doc: dict[str, Any]) -> list[str]:
    return custom_resources.validate(doc).errors


def test_crd_validation_catches_what_an_api_server_would_refuse(
    custom_resources: CustomResources,
) -> None:
    """The validator is not a rubber stamp: unknown fields, schema violations and CEL
    rules each refuse an object."""
    gateway = one("Gateway", "social-media-gateway")
    assert errors(custom_resources, gateway) == []

    unknown = copy.deepcopy(gateway)
    unknown["spec"]["listeners"][0]["websocket"] = True
    assert any("websocket" in e for e in errors(custom_resources, unknown))

    bad_port = copy.deepcopy(gateway)
    bad_port["spec"]["listeners"][0]["port"] = 70000
    assert errors(custom_resources, bad_port)

    # CEL: a plain HTTP listener must not carry TLS settings.
    http_with_tls = copy.deepcopy(gateway)
    http_with_tls["spec"]["listeners"][0]["tls"] = gateway["spec"]["listeners"][1]["tls"]
    assert any("tls" in e.lower() for e in errors(custom_resources, http_with_tls))

    # CEL: listener names are unique.
    duplicate = copy.deepcopy(gateway)
    duplicate["spec"]["listeners"][2]["name"] = "https"
    assert any("unique" in e.lower() for e in errors(custom_resources, duplicate))

    # CEL on an Envoy Gateway policy: targetRefs of a ClientTrafficPolicy are Gateways.
    policy = one("ClientTrafficPolicy", "websocket-timeouts")
    policy["spec"]["targetRefs"][0]["kind"] = "HTTPRoute"
    assert any("Gateway" in e for e in errors(custom_resources, policy))

    # Schema pattern on a duration.
    timeouts = one("ClientTrafficPolicy", "websocket-timeouts")
    timeouts["spec"]["timeout"]["http"]["idleTimeout"] = "an hour"
    assert errors(custom_resources, timeouts)

    # ServiceMonitor: unknown endpoint field.
    monitor = one("ServiceMonitor", "backend-servicemonitor")
    monitor["spec"]["endpoints"][0]["scrapeEvery"] = "30s"
    assert errors(custom_resources, monitor)

    # Namespaced kinds need a namespace; cluster-scoped ones must not have one.
    gateway_class = one("GatewayClass", "social-media-gateway")
    gateway_class["metadata"]["namespace"] = "social-media"
    assert errors(custom_resources, gateway_class)


def test_kubernetes_validate_is_strict() -> None:
    deployment = one("Deployment", "backend-deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, MIN_KUBERNETES, strict=True)
