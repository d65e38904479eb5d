"""devops/README.md is true to what is built, and the docker-compose files fit the rest.

The README names no file that is missing and no Go path; the seed's names, verbs and
numbers are in it. docker-compose.yml runs the backend from its Dockerfile, the web app with
hot reload, Redis and coturn with the images the cluster runs, coturn with
devops/local/turnserver.conf and the backend's TURN_SECRET; docker-compose.observability.yml
pins its images. (No `docker compose config` here: the machine has no compose plugin.)
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import yaml
from devopslib import (
    DEVOPS,
    ROOT,
    TURNSERVER_CONF,
    container,
    deployed_documents,
    index,
    turnserver_options,
)

README = DEVOPS / "README.md"


def named_paths(text: str) -> set[str]:
    """File paths the text names in backticks, and the files of its `devops/` tree."""
    paths = set()
    for quoted in re.findall(r"`([^`\s]+)`", text):
        if re.search(r"\.(ya?ml|json|sh|md|dockerfile|toml|py)$", quoted) and "*" not in quoted:
            paths.add(quoted)
    tree = re.search(r"```text\ndevops/\n(.*?)```", text, re.S)
    assert tree, "the README draws the devops/ tree"
    stack: list[str] = []
    for line in tree.group(1).splitlines():
        match = re.match(r"^([│ ]*)[├└]── (\S+)", line)
        if not match:
            continue
        depth = len(match.group(1)) // 4
        name = match.group(2)
        stack[depth:] = [name.rstrip("/")]
        if "*" not in name:
            paths.add("devops/" + "/".join(stack))
    return paths


def resolve(path: str) -> list[str]:
    """Where a named path may live: the repository root, devops/, devops/kubernetes/."""
    return [path, f"devops/{path}", f"devops/kubernetes/{path}", f"devops/docker/{path}"]


def test_every_file_the_readmes_name_exists() -> None:
    for readme in (README, DEVOPS / "local" / "README.md"):
        paths = named_paths(readme.read_text()) if readme == README else set()
        if readme != README:
            for quoted in re.findall(r"`([^`\s]+)`", readme.read_text()):
                if re.search(r"\.(ya?ml|json)$", quoted):
                    paths.add(f"devops/local/{quoted}")
        assert len(paths) > (20 if readme == README else 3)
        missing = [p for p in paths if not any((ROOT / c).exists() for c in resolve(p))]
        assert missing == [], f"{readme.relative_to(ROOT)} names missing files"


def test_readme_has_no_go_left_and_keeps_the_seeds_words() -> None:
    text = README.read_text()
    for gone in (
        "go run",
        "backend/go",
        "golang",
        "scratch",
        "hub.go",
        "CGO_ENABLED",
        "PodSecurityPolicy\n",
    ):
        assert gone not in text, gone
    assert (
        "PodSecurityPolicy, which the original design used, was removed in Kubernetes 1.25" in text
    )
    for word in (
        "./devops/deploy.sh prerequisites",
        "./devops/deploy.sh build",
        "./devops/deploy.sh deploy",
        "./devops/deploy.sh health",
        "./devops/deploy.sh cleanup",
        "KUBECTL_CONTEXT=my-cluster",
        "DRY_RUN=true",
        "2-10 frontend, 2-15 backend",
        "+2 pods per 30s",
        "-1 pod per 5min",
        "social-media-tls",
        "social-media-turn-tls",
        "social-media-gateway",
        "social-media-backend-sa",
        "kubectl logs -n social-media deployment/backend-deployment -c backend",
        "kubectl logs -n social-media deployment/frontend-deployment -c frontend",
        "http://localhost:3001 (admin/admin)",
        "kubernetes.io/metadata.name",
        "Redis",
        "ClientTrafficPolicy",
        "BackendTrafficPolicy",
    ):
        assert word in text, word


def compose(name: str) -> dict[str, dict[str, dict[str, object]]]:
    loaded: dict[str, dict[str, dict[str, object]]] = yaml.safe_load((ROOT / name).read_text())
    return loaded


def test_local_compose_runs_backend_frontend_redis_and_coturn() -> None:
    services = compose("docker-compose.yml")["services"]
    assert set(services) == {"backend", "frontend", "redis", "coturn"}
    objects = index(deployed_documents())
    backend = services["backend"]
    assert backend["build"] == {"context": ".", "dockerfile": "devops/docker/backend.dockerfile"}
    assert (ROOT / "devops/docker/backend.dockerfile").exists()
    assert (
        backend["image"]
        == container(objects[("Deployment", "backend-deployment")], "backend")["image"]
    )
    assert backend["ports"] == ["8080:8080"]
    assert backend["read_only"] is True and backend["cap_drop"] == ["ALL"]
    env = backend["environment"]
    assert isinstance(env, dict)
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["REPLICA_ADDRESS"] == "http://backend:8080"  # the service name, one replica
    assert env["ALLOWED_ORIGINS"] == "http://localhost:3000"
    # No secret value in the file: JWT_SECRET comes from the caller's environment, and Redis
    # mode needs one, so compose refuses to start without it (`:?`) rather than passing "".
    assert str(env["JWT_SECRET"]).startswith("${JWT_SECRET:?")
    frontend = services["frontend"]
    assert "next dev" in str(frontend["command"]), "hot reload, as the seed says"
    assert frontend["ports"] == ["3000:3000"]
    assert frontend["environment"]["BACKEND_URL"] == "http://backend:8080"  # type: ignore[index]
    redis = services["redis"]
    assert (
        redis["image"] == container(objects[("Deployment", "redis-deployment")], "redis")["image"]
    )
    node_image = frontend["image"]
    assert isinstance(node_image, str)
    assert node_image in (ROOT / "devops/docker/frontend.dockerfile").read_text()


def test_local_compose_backend_environment_is_accepted() -> None:
    """The backend's own settings check passes on the compose backend's environment, with the
    JWT_SECRET the caller exports: Redis mode, addressed by the service name."""
    from videoconf.config import Settings

    env = {
        name: "s" * 48 if name in {"JWT_SECRET", "TURN_SECRET"} else str(value)
        for name, value in compose("docker-compose.yml")["services"]["backend"][
            "environment"
        ].items()
    }
    settings = Settings.from_env(env)
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.replica_address == "http://backend:8080"
    assert not settings.jwt_secret_generated and not settings.production
    assert settings.turn_secret == "s" * 48
    assert settings.turn_urls == (
        "turn:127.0.0.1:3478?transport=udp",
        "turn:127.0.0.1:3478?transport=tcp",
    )


def test_local_compose_coturn_uses_the_file_and_the_backends_secret() -> None:
    """coturn in compose: devops/local/turnserver.conf, the secret from the shell (the same
    variable as the backend's, never a value in the file), 3478 published on loopback only
    (where the backend's TURN_URLS send the browsers), relaying only to its own address."""
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = loaded["services"]
    coturn = services["coturn"]
    objects = index(deployed_documents())
    coturn_deployment = objects[("Deployment", "coturn-deployment")]
    assert coturn["image"] == container(coturn_deployment, "coturn")["image"]
    assert coturn["entrypoint"] == ["turnserver"]
    command = coturn["command"]
    assert command[:2] == ["-c", "/etc/coturn/turnserver.conf"]
    assert "./devops/local/turnserver.conf:/etc/coturn/turnserver.conf:ro" in coturn["volumes"]
    assert TURNSERVER_CONF.exists()
    options = dict(arg.removeprefix("--").partition("=")[::2] for arg in command[2:])
    assert options["static-auth-secret"].startswith("${TURN_SECRET:?")
    backend_env = services["backend"]["environment"]
    assert str(backend_env["TURN_SECRET"]).startswith("${TURN_SECRET:?")
    # Its fixed address on a network of its own: where it listens, relays from, and the one
    # private address it may relay to (relay to relay).
    address = coturn["networks"]["turn"]["ipv4_address"]
    assert options["listening-ip"] == options["relay-ip"] == options["allowed-peer-ip"] == address
    # No TURN over TLS locally (no certificate): TLS is on in the file, off on this command line.
    assert options["no-tls"] == ""
    assert set(options) == {
        "static-auth-secret",
        "listening-ip",
        "relay-ip",
        "allowed-peer-ip",
        "no-tls",
    }
    assert not set(options) & set(turnserver_options(TURNSERVER_CONF.read_text()))
    [subnet] = loaded["networks"]["turn"]["ipam"]["config"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet["subnet"])
    on_its_network = [name for name, spec in services.items() if "turn" in spec.get("networks", {})]
    assert on_its_network == ["coturn"]
    # Published on loopback only: 3478 over UDP and TCP, where TURN_URLS point; no relay range.
    assert sorted(coturn["ports"]) == ["127.0.0.1:3478:3478/tcp", "127.0.0.1:3478:3478/udp"]
    for url in str(backend_env["TURN_URLS"]).split(","):
        assert url.split("?")[0] == "turn:127.0.0.1:3478", url
    # Locked down like the backend; the one capability the image cannot start without.
    assert coturn["read_only"] is True
    assert coturn["tmpfs"] == ["/var/lib/coturn"]
    assert coturn["cap_drop"] == ["ALL"] and coturn["cap_add"] == ["NET_BIND_SERVICE"]
    assert coturn["security_opt"] == ["no-new-privileges:true"]


def test_compose_images_are_pinned() -> None:
    for name in ("docker-compose.yml", "docker-compose.observability.yml"):
        for service, spec in compose(name)["services"].items():
            image = spec["image"]
            assert isinstance(image, str)
            tag = image.partition(":")[2]
            assert re.search(r"\d+\.\d+\.\d+", tag), (name, service, image)
