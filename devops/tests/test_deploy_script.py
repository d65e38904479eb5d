"""devops/deploy.sh: shellcheck, and every verb run against recording stand-ins.

The `kubectl` and `docker` on PATH here are fakes that append their arguments (and what they
read on standard input) to a log, answer the few questions deploy.sh asks (does this Secret
or CRD exist, endpoint addresses, a port-forward that really listens on 127.0.0.1 and serves
a /metrics page), and fail on request. That proves the order of the steps, the context flag on
every call, what is applied, which Secrets are created, and the error paths.

What it cannot prove: that a real API server accepts the applies (test_manifests.py validates
the objects), that Envoy Gateway's install URL serves what it should, that rollouts finish, or
that a real `kubectl port-forward` reaches a real pod.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from devopslib import DEPLOYMENT_ORDER, DEVOPS, ROOT, need_program

SCRIPT = DEVOPS / "deploy.sh"

FAKE_KUBECTL = r"""
import http.server, json, os, socket, sys, threading

args = sys.argv[1:]
stdin = ""
if ("-f" in args and args[args.index("-f") + 1] == "-") or any(
    a in args for a in ("--from-env-file=/dev/stdin", "--patch-file=/dev/stdin")
):
    stdin = sys.stdin.read()
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"tool": "kubectl", "argv": args, "stdin": stdin}) + "\n")

words = []
position = 0
while position < len(args):
    if args[position] in ("-n", "--namespace", "--context", "-l", "-o", "-f"):
        position += 2
        continue
    if not args[position].startswith("-"):
        words.append(args[position])
    position += 1
joined = " ".join(args)
for failing in filter(None, os.environ.get("FAKE_FAIL", "").split("|")):
    if failing in joined:
        print(f"error: fake failure of {failing}", file=sys.stderr)
        sys.exit(1)
if words[:1] == ["cluster-info"] and os.environ.get("FAKE_UNREACHABLE"):
    print("The connection to the server 127.0.0.1:6443 was refused", file=sys.stderr)
    sys.exit(1)
if words[:2] == ["config", "get-contexts"]:
    sys.exit(1 if words[2:] == ["missing"] else 0)
missing = os.environ.get("FAKE_MISSING", "").split()
template = next((a for a in args if a.startswith("go-template=")), "")
if words[:2] == ["get", "secret"] and ".data." in template and f"secret/{words[2]}" not in missing:
    key = template.split(".data.")[1].split("}")[0]
    print("" if f"secret-key/{words[2]}/{key}" in missing else "yes", end="")
    sys.exit(0)
if words[:2] == ["get", "service"] and "jsonpath={.status.loadBalancer" in joined:
    print("" if f"lb/{words[2]}" in missing else "198.51.100.20", end="")
    sys.exit(0)
if words[:1] == ["get"] and len(words) >= 3 and words[1] != "endpointslices":
    kind, name = words[1], words[2]
    if f"{kind}/{name}" in os.environ.get("FAKE_MISSING", "").split():
        print(f'Error from server (NotFound): {kind} "{name}" not found', file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
if words[:1] == ["get"] and words[1] == "endpointslices":
    print("10.244.1.5 10.244.2.7", end="")
    sys.exit(0)
if words[:1] == ["port-forward"]:
    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"websocket_connections_total 3.0\nwebrtc_rooms_active 1.0\n"
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Metrics)
    print(f"Forwarding from 127.0.0.1:{server.server_address[1]} -> 8080", flush=True)
    server.serve_forever()
print("ok")
"""

FAKE_DOCKER = r"""
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({"tool": "docker", "argv": sys.argv[1:], "stdin": ""}) + "\n")
if sys.argv[1:2] == ["info"] and os.environ.get("FAKE_DOCKER_DOWN"):
    print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.", file=sys.stderr)
    sys.exit(1)
"""

# What deploy.sh needs from the system besides kubectl and docker.
TOOLS = [
    "bash",
    "awk",
    "sed",
    "grep",
    "dirname",
    "head",
    "od",
    "tr",
    "cat",
    "mktemp",
    "sleep",
    "rm",
    "curl",
    "base64",
]


class Run:
    def __init__(self, result: subprocess.CompletedProcess[str], log: Path) -> None:
        self.code = result.returncode
        self.out = result.stdout
        self.err = result.stderr
        self.calls: list[dict[str, Any]] = (
            [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        )

    def argv(self, tool: str = "kubectl") -> list[list[str]]:
        return [c["argv"] for c in self.calls if c["tool"] == tool]

    def applies(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["tool"] == "kubectl" and "apply" in c["argv"]]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A bin folder with the system tools deploy.sh uses, and nothing else."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed on this machine"
        (bin_dir / tool).symlink_to(found)
    return bin_dir


def add_fake(bin_dir: Path, name: str, source: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{sys.executable} -S\n{source}")
    path.chmod(0o755)


@pytest.fixture
def fakes(sandbox: Path) -> Path:
    add_fake(sandbox, "kubectl", FAKE_KUBECTL)
    add_fake(sandbox, "docker", FAKE_DOCKER)
    return sandbox


def deploy_sh(bin_dir: Path, *args: str, **env: str) -> Run:
    log = bin_dir.parent / "calls.jsonl"
    log.unlink(missing_ok=True)
    result = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=bin_dir.parent,  # deploy.sh finds the repository from its own path
        stdin=subprocess.DEVNULL,
        env={"PATH": str(bin_dir), "HOME": str(bin_dir.parent), "FAKE_LOG": str(log), **env},
        check=False,
    )
    return Run(result, log)


def applied_files(run: Run) -> list[str]:
    """The manifest each apply sent, recognised by the objects in its standard input."""
    by_objects = {
        tuple(
            (d["kind"], d["metadata"]["name"])
            for d in yaml.safe_load_all((DEVOPS / "kubernetes" / name).read_text())
            if d
        ): name
        for name in DEPLOYMENT_ORDER
    }
    found = []
    for call in run.applies():
        if call["stdin"]:
            objects = tuple(
                (d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(call["stdin"]) if d
            )
            found.append(by_objects[objects])
    return found


# -- static -------------------------------------------------------------------------------


def test_shellcheck_is_clean() -> None:
    shellcheck = need_program("shellcheck", "apt-get install shellcheck")
    result = subprocess.run(
        [shellcheck, "--severity=style", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_strict_mode_and_executable() -> None:
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(SCRIPT, os.X_OK)


def test_help_and_unknown_verbs(sandbox: Path) -> None:
    run = deploy_sh(sandbox, "help")
    assert run.code == 0
    for verb in (
        "prerequisites",
        "build",
        "deploy",
        "health",
        "cleanup",
        "KUBECTL_CONTEXT",
        "DRY_RUN",
    ):
        assert verb in run.out
    run = deploy_sh(sandbox, "launch")
    assert run.code == 2
    assert "unknown command" in run.err
    assert deploy_sh(sandbox).code == 2


# -- DRY_RUN ------------------------------------------------------------------------------


def test_dry_run_needs_no_cluster_and_prints_the_plan_in_order(sandbox: Path) -> None:
    """No kubectl and no docker on PATH at all: the plan is printed, nothing is run."""
    run = deploy_sh(sandbox, "deploy", DRY_RUN="true")
    assert run.code == 0, run.err
    assert run.calls == []
    applies = [
        line.split(" -f ")[1]
        for line in run.out.splitlines()
        if line.startswith("[dry-run] kubectl apply")
    ]
    assert applies == [f"devops/kubernetes/{name}" for name in DEPLOYMENT_ORDER]
    steps = [line for line in run.out.splitlines() if line.startswith("==> Step ")]
    assert [s.split(": ")[1].split(" (")[0] for s in steps] == [
        "Security policies",
        "Backend",
        "Frontend",
        "Gateway",
        "Routes",
        "Monitoring",
    ]
    # The objects of each file are listed under its apply.
    for kind_name in (
        "Namespace/social-media",
        "Deployment/backend-deployment",
        "Gateway/social-media-gateway",
        "HorizontalPodAutoscaler/backend-hpa",
    ):
        assert f"    {kind_name}" in run.out
    for verb in ("build", "health", "cleanup", "prerequisites"):
        other = deploy_sh(sandbox, verb, DRY_RUN="true")
        assert other.code == 0, (verb, other.err)
        assert other.calls == []
        assert "[dry-run]" in other.out


def test_dry_run_shows_the_context_and_images(sandbox: Path) -> None:
    run = deploy_sh(
        sandbox,
        "deploy",
        DRY_RUN="true",
        KUBECTL_CONTEXT="prod-eu",
        IMAGE_REGISTRY="registry.example.com/team",
        IMAGE_TAG="1.2.3",
    )
    kubectl_lines = [line for line in run.out.splitlines() if line.startswith("[dry-run] kubectl")]
    assert kubectl_lines and all(
        line.startswith("[dry-run] kubectl --context prod-eu ") for line in kubectl_lines
    )
    assert "registry.example.com/team/videoconf-backend:1.2.3" in run.out


# -- deploy against the fakes -------------------------------------------------------------


def test_deploy_applies_in_order_waits_between_and_creates_missing_secrets(fakes: Path) -> None:
    run = deploy_sh(
        fakes,
        "deploy",
        KUBECTL_CONTEXT="my-cluster",
        FAKE_MISSING="secret/backend-secrets secret/redis-secrets secret/social-media-tls"
        " secret/social-media-turn-tls",
    )
    assert run.code == 0, run.err
    assert applied_files(run) == DEPLOYMENT_ORDER
    # The context is checked to exist, then every kubectl call names it first.
    assert run.argv()[0] == ["config", "get-contexts", "my-cluster"]
    for argv in run.argv()[1:]:
        assert argv[:2] == ["--context", "my-cluster"], argv
    # Each app is rolled out and ready before the next step is applied.
    rollout_positions = {}
    apply_count = 0
    for call in run.calls:
        if "apply" in call["argv"]:
            apply_count += 1
        if "rollout" in call["argv"]:
            rollout_positions[call["argv"][-2]] = apply_count
    assert rollout_positions == {
        "deployment/redis-deployment": 2,
        "deployment/backend-deployment": 3,
        "deployment/coturn-deployment": 4,
        "deployment/frontend-deployment": 5,
    }
    waits = [c["argv"] for c in run.calls if "wait" in c["argv"] and "deployment" in c["argv"]]
    assert [w[w.index("-l") + 1] for w in waits] == [
        "app.kubernetes.io/name=redis",
        "app.kubernetes.io/name=backend",
        "app.kubernetes.io/name=coturn",
        "app.kubernetes.io/name=frontend",
    ]
    # The Secrets: created after the namespace exists, from standard input, never echoed.
    secrets = [c for c in run.calls if "secret" in c["argv"] and "create" in c["argv"]]
    assert [c["argv"][c["argv"].index("generic") + 1] for c in secrets] == [
        "backend-secrets",
        "redis-secrets",
    ]
    created = dict(line.split("=", 1) for line in secrets[0]["stdin"].splitlines())
    assert set(created) == {"JWT_SECRET", "TURN_SECRET"}
    # Random, 64 hex characters each, two different ones, never printed.
    assert len(created["JWT_SECRET"]) == len(created["TURN_SECRET"]) == 64
    assert created["JWT_SECRET"] != created["TURN_SECRET"]
    for value in created.values():
        assert value not in run.out + run.err
    assert not [c for c in run.calls if "patch" in c["argv"]]
    assert "social-media-tls is missing" in run.err
    # The TURN certificate (coturn.yaml's optional volume): how to create it, and that coturn
    # reads it only when it starts.
    assert "social-media-turn-tls is missing" in run.err
    assert "kubectl create secret tls social-media-turn-tls " in run.err
    assert "rollout restart deployment/coturn-deployment" in run.err
    assert run.calls.index(secrets[0]) > run.calls.index(run.applies()[0])
    assert "Deployed." in run.out


def test_deploy_leaves_existing_secrets_alone_and_uses_given_auth0_settings(fakes: Path) -> None:
    run = deploy_sh(fakes, "deploy")
    assert run.code == 0, run.err
    assert not [c for c in run.calls if "create" in c["argv"]]
    assert "backend-secrets exists" in run.out
    assert not [c for c in run.calls if "patch" in c["argv"]]
    assert "is missing" not in run.err, "both TLS Secrets exist"
    run = deploy_sh(
        fakes,
        "deploy",
        FAKE_MISSING="secret/backend-secrets",
        JWT_SECRET="x" * 40,
        TURN_SECRET="t" * 40,
        AUTH0_DOMAIN="tenant.eu.auth0.com",
        AUTH0_AUDIENCE="https://api.example.com",
    )
    assert run.code == 0, run.err
    [created] = [c for c in run.calls if "create" in c["argv"]]
    assert created["stdin"].splitlines() == [
        "JWT_SECRET=" + "x" * 40,
        "TURN_SECRET=" + "t" * 40,
        "AUTH0_DOMAIN=tenant.eu.auth0.com",
        "AUTH0_AUDIENCE=https://api.example.com",
    ]
    for name in ("JWT_SECRET", "TURN_SECRET"):
        short = deploy_sh(fakes, "deploy", FAKE_MISSING="secret/backend-secrets", **{name: "short"})
        assert short.code == 1
        assert f"{name} must be at least 32 characters" in short.err
        assert not [c for c in short.calls if "create" in c["argv"]]


def test_deploy_adds_a_turn_secret_to_an_older_backend_secret(fakes: Path) -> None:
    """A backend-secrets made before TURN existed: TURN_SECRET is added (random, or the one
    given), through a patch read from standard input; its other keys are not touched."""
    run = deploy_sh(fakes, "deploy", FAKE_MISSING="secret-key/backend-secrets/TURN_SECRET")
    assert run.code == 0, run.err
    assert not [c for c in run.calls if "create" in c["argv"] and "backend-secrets" in c["argv"]]
    [patch] = [c for c in run.calls if "patch" in c["argv"]]
    assert patch["argv"][-4:] == [
        "secret",
        "backend-secrets",
        "--type=merge",
        "--patch-file=/dev/stdin",
    ]
    body = json.loads(patch["stdin"])
    assert set(body) == {"data"} and set(body["data"]) == {"TURN_SECRET"}
    secret = base64.b64decode(body["data"]["TURN_SECRET"]).decode()
    assert len(secret) == 64
    assert secret not in run.out + run.err and body["data"]["TURN_SECRET"] not in run.out
    assert "without TURN_SECRET" in run.out
    # The patch comes before the Deployments that read the key.
    assert run.calls.index(patch) < run.calls.index(run.applies()[1])
    given = deploy_sh(
        fakes,
        "deploy",
        FAKE_MISSING="secret-key/backend-secrets/TURN_SECRET",
        TURN_SECRET="g" * 48,
    )
    [patch] = [c for c in given.calls if "patch" in c["argv"]]
    assert base64.b64decode(json.loads(patch["stdin"])["data"]["TURN_SECRET"]) == b"g" * 48


def test_deploy_substitutes_the_built_images(fakes: Path) -> None:
    run = deploy_sh(
        fakes, "deploy", IMAGE_REGISTRY="registry.example.com/team/", IMAGE_TAG="abc123"
    )
    assert run.code == 0, run.err
    sent = "".join(c["stdin"] for c in run.applies())
    assert "image: registry.example.com/team/videoconf-backend:abc123" in sent
    assert "image: registry.example.com/team/videoconf-frontend:abc123" in sent
    assert "videoconf-backend:0.1.0" not in sent


def test_deploy_without_prometheus_operator_skips_its_objects(fakes: Path) -> None:
    run = deploy_sh(fakes, "deploy", FAKE_MISSING="crd/servicemonitors.monitoring.coreos.com")
    assert run.code == 0, run.err
    last = run.applies()[-1]
    assert "--selector=release!=prometheus" in last["argv"]
    assert "ServiceMonitor and PrometheusRule" in run.err


def test_deploy_stops_before_the_gateway_without_gateway_api(fakes: Path) -> None:
    run = deploy_sh(fakes, "deploy", FAKE_MISSING="crd/gateways.gateway.networking.k8s.io")
    assert run.code == 1
    assert "prerequisites" in run.err
    assert applied_files(run) == DEPLOYMENT_ORDER[: DEPLOYMENT_ORDER.index("gateway/gateway.yaml")]


def test_deploy_stops_when_a_rollout_fails(fakes: Path) -> None:
    run = deploy_sh(fakes, "deploy", FAKE_FAIL="rollout status deployment/backend-deployment")
    assert run.code != 0
    assert applied_files(run) == DEPLOYMENT_ORDER[:3]


# -- error paths --------------------------------------------------------------------------


def test_clear_errors_without_kubectl_cluster_context_or_docker(sandbox: Path, fakes: Path) -> None:
    bare = sandbox.parent / "bare"
    bare.mkdir()
    for tool in TOOLS:
        (bare / tool).symlink_to(shutil.which(tool) or "")
    for verb in ("deploy", "health", "cleanup", "prerequisites"):
        run = deploy_sh(bare, verb)
        assert run.code == 1
        assert "kubectl is not on PATH" in run.err
    run = deploy_sh(bare, "build")
    assert run.code == 1 and "docker is not on PATH" in run.err

    run = deploy_sh(fakes, "deploy", FAKE_UNREACHABLE="1")
    assert run.code == 1
    assert "cannot reach the Kubernetes cluster (context: current)" in run.err
    assert "was refused" in run.err
    assert run.applies() == []

    run = deploy_sh(fakes, "deploy", KUBECTL_CONTEXT="missing")
    assert run.code == 1 and "no kubectl context named 'missing'" in run.err

    run = deploy_sh(fakes, "build", FAKE_DOCKER_DOWN="1")
    assert run.code == 1 and "Docker daemon is not reachable" in run.err


# -- build, health, cleanup, prerequisites ------------------------------------------------


def test_build_builds_both_images_from_the_repository_root(fakes: Path) -> None:
    run = deploy_sh(fakes, "build")
    assert run.code == 0, run.err
    builds = [a for a in run.argv("docker") if a[0] == "build"]
    assert builds == [
        ["build", "-f", "devops/docker/backend.dockerfile", "-t", "videoconf-backend:0.1.0", "."],
        ["build", "-f", "devops/docker/frontend.dockerfile", "-t", "videoconf-frontend:0.1.0", "."],
    ]
    assert not [a for a in run.argv("docker") if a[0] == "push"]
    pushed = deploy_sh(fakes, "build", IMAGE_REGISTRY="registry.example.com", IMAGE_TAG="2")
    assert [a for a in pushed.argv("docker") if a[0] == "push"] == [
        ["push", "registry.example.com/videoconf-backend:2"],
        ["push", "registry.example.com/videoconf-frontend:2"],
    ]
    assert (ROOT / "devops/docker/backend.dockerfile").exists()


def test_health_checks_rollouts_gateway_endpoints_and_metrics(fakes: Path) -> None:
    run = deploy_sh(fakes, "health", KUBECTL_CONTEXT="my-cluster")
    assert run.code == 0, run.err
    argv = run.argv()
    assert all(a[:2] == ["--context", "my-cluster"] for a in argv[1:])
    assert [a[a.index("status") + 1] for a in argv if "rollout" in a] == [
        "deployment/redis-deployment",
        "deployment/backend-deployment",
        "deployment/coturn-deployment",
        "deployment/frontend-deployment",
    ]
    assert any(
        "--for=condition=Programmed" in a and "gateway/social-media-gateway" in a for a in argv
    )
    services = [a[a.index("-l") + 1] for a in argv if "endpointslices" in a]
    assert services == [
        f"kubernetes.io/service-name={s}"
        for s in ("backend-service", "frontend-service", "redis-service", "coturn-service")
    ]
    assert any("port-forward" in a and "svc/backend-service" in a for a in argv)
    assert "websocket_connections_total present" in run.out
    assert "coturn-service (TURN) is at 198.51.100.20" in run.out
    assert "Healthy" in run.out
    # No load balancer address for coturn yet: said, but not a failure (direct calls work).
    pending = deploy_sh(fakes, "health", FAKE_MISSING="lb/coturn-service")
    assert pending.code == 0, pending.err
    assert "coturn-service has no load balancer address yet" in pending.err


def test_health_fails_when_the_gateway_is_not_programmed(fakes: Path) -> None:
    run = deploy_sh(fakes, "health", FAKE_FAIL="--for=condition=Programmed")
    assert run.code == 1
    assert "not Programmed" in run.err
    assert "1 health check(s) failed" in run.err


def test_cleanup_deletes_in_reverse_order(fakes: Path) -> None:
    run = deploy_sh(fakes, "cleanup", KUBECTL_CONTEXT="my-cluster")
    assert run.code == 0, run.err
    deleted = [a[-1] for a in run.argv() if "delete" in a]
    assert deleted == [f"devops/kubernetes/{name}" for name in reversed(DEPLOYMENT_ORDER)]


def test_prerequisites_install_envoy_gateway(fakes: Path) -> None:
    run = deploy_sh(fakes, "prerequisites", ENVOY_GATEWAY_VERSION="v1.9.0")
    assert run.code == 0, run.err
    [install] = [a for a in run.argv() if "apply" in a]
    assert "--server-side" in install
    assert (
        install[-1] == "https://github.com/envoyproxy/gateway/releases/download/v1.9.0/install.yaml"
    )
    assert any("deployment/envoy-gateway" in a for a in run.argv())
