"""What the devops tests share: where things are, the manifests as data, small lookups."""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEVOPS = ROOT / "devops"
KUBERNETES = DEVOPS / "kubernetes"
LOCAL = DEVOPS / "local"
DOCKER = DEVOPS / "docker"
VENV_BIN = ROOT / ".venv" / "bin"
# The upstream CRDs, beside the project (../shared/crds, see its README); CRDS_DIR overrides.
CRDS = Path(os.environ.get("CRDS_DIR", ROOT.parent / "shared" / "crds"))

NAMESPACE = "social-media"
# coturn's configuration: docker-compose.yml mounts it, the ConfigMap coturn-config holds it.
TURNSERVER_CONF = LOCAL / "turnserver.conf"

# The seed's deployment order (devops/README.md): kustomization.yaml lists these, deploy.sh
# applies them in this order.
DEPLOYMENT_ORDER = [
    "security-policies.yaml",
    "redis.yaml",
    "backend-deployment.yaml",
    "coturn.yaml",
    "frontend-deployment.yaml",
    "gateway/gateway.yaml",
    "gateway/routes.yaml",
    "monitoring.yaml",
]
# Manifests that are not applied by the kustomization, on purpose.
EXTRA_MANIFESTS = ["secrets.template.yaml", "argocd-application.yaml"]


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def need_program(name: str, hint: str) -> str:
    """The path of a program; fails under CI=true when it is missing, skips elsewhere."""
    path = shutil.which(name) or (str(VENV_BIN / name) if (VENV_BIN / name).exists() else None)
    if path is None:
        message = f"{name} is not installed ({hint})"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def load_documents(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def deployed_documents() -> list[dict[str, Any]]:
    """Every object of the deployment, in the deployment order."""
    return [doc for name in DEPLOYMENT_ORDER for doc in load_documents(KUBERNETES / name)]


def all_documents() -> list[dict[str, Any]]:
    return deployed_documents() + [
        doc for name in EXTRA_MANIFESTS for doc in load_documents(KUBERNETES / name)
    ]


def manifest_files() -> list[Path]:
    return [KUBERNETES / name for name in DEPLOYMENT_ORDER + EXTRA_MANIFESTS]


def key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def index(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in docs:
        assert key(doc) not in found, f"duplicate {key(doc)}"
        found[key(doc)] = doc
    return found


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels


def container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    for item in pod_spec(doc)["containers"]:
        if item["name"] == name:
            return dict(item)
    raise AssertionError(f"no container {name!r} in {key(doc)}")


def env_of(item: dict[str, Any]) -> dict[str, Any]:
    """A container's env as name -> value (a string, or the valueFrom mapping)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in item.get("env", [])}


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, defined: dict[str, str]) -> str:
    """Kubernetes' expansion of an env value: `$(NAME)` becomes the value of a variable defined
    earlier in the list; a reference to anything else stays as written; `$$` is one `$`."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return defined.get(name, match.group(0))

    return _REFERENCE.sub(replace, value)


def resolved_env(
    item: dict[str, Any], value_from: Callable[[str, dict[str, Any]], str | None]
) -> dict[str, str]:
    """A container's environment as the kubelet builds it, in order: `value_from(name,
    valueFrom)` gives what a Secret key or a field would hold (None: not set, as an optional
    Secret key that is absent), plain values are expanded with `expand`."""
    env: dict[str, str] = {}
    for entry in item.get("env", []):
        if "valueFrom" in entry:
            value = value_from(entry["name"], entry["valueFrom"])
            if value is None:
                continue
        else:
            value = expand(entry.get("value", ""), env)
        env[entry["name"]] = value
    return env


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) against labels."""
    if selector is None:
        return False
    for name, value in (selector.get("matchLabels") or {}).items():
        if labels.get(name) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        name, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(name) not in values:
            return False
        if operator == "NotIn" and name in labels and labels[name] in values:
            return False
        if operator == "Exists" and name not in labels:
            return False
        if operator == "DoesNotExist" and name in labels:
            return False
    return True


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def turnserver_options(text: str) -> dict[str, list[str]]:
    """A coturn configuration file as option -> its values, in order (a flag's value is "";
    an option may be given several times, denied-peer-ip for one)."""
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        options.setdefault(name.strip(), []).append(value.strip())
    return options
