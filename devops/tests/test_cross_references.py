"""The manifests refer to each other correctly, and hold the seed's contract.

Selectors against labels, ports and port names, Gateway parentRefs and sectionNames, policy
targets, the ServiceMonitor's port, HPA targets, service accounts, secret keys; then the
seed's names and numbers, the pods' security settings, and the shutdown time budget.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from devopslib import (
    DEVOPS,
    NAMESPACE,
    TURNSERVER_CONF,
    container,
    deployed_documents,
    env_of,
    of_kind,
    pod_labels,
    pod_spec,
    resolved_env,
    selects,
    turnserver_options,
)

Objects = dict[tuple[str, str], dict[str, Any]]


def deployments(objects: Objects) -> list[dict[str, Any]]:
    return [doc for (kind, _), doc in objects.items() if kind == "Deployment"]


def ports_by_name(doc: dict[str, Any]) -> dict[str, int]:
    return {
        port["name"]: port["containerPort"]
        for item in pod_spec(doc)["containers"]
        for port in item.get("ports", [])
    }


# -- references ---------------------------------------------------------------------------


def test_every_namespaced_object_is_in_social_media(objects: Objects) -> None:
    cluster_scoped = {("Namespace", NAMESPACE), ("GatewayClass", "social-media-gateway")}
    for (kind, name), doc in objects.items():
        if (kind, name) in cluster_scoped:
            assert "namespace" not in doc["metadata"], (kind, name)
        elif kind == "Application":
            assert doc["metadata"]["namespace"] == "argocd"
            assert doc["spec"]["destination"]["namespace"] == NAMESPACE
        else:
            assert doc["metadata"]["namespace"] == NAMESPACE, (kind, name)


def test_deployment_selectors_match_their_pod_labels(objects: Objects) -> None:
    for doc in deployments(objects):
        assert selects(doc["spec"]["selector"], pod_labels(doc)), doc["metadata"]["name"]
        # app.kubernetes.io/name is what deploy.sh waits on and the policies select.
        assert pod_labels(doc)["app.kubernetes.io/name"] in {
            "backend",
            "frontend",
            "redis",
            "coturn",
        }


def test_services_select_exactly_one_deployment_and_its_named_ports(objects: Objects) -> None:
    for (kind, name), service in objects.items():
        if kind != "Service":
            continue
        matching = [
            d
            for d in deployments(objects)
            if selects({"matchLabels": service["spec"]["selector"]}, pod_labels(d))
        ]
        assert len(matching) == 1, (name, [d["metadata"]["name"] for d in matching])
        named = ports_by_name(matching[0])
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            assert target in named if isinstance(target, str) else target in named.values(), (
                name,
                port,
            )


def test_service_ports_are_the_seeds(objects: Objects) -> None:
    backend = objects[("Service", "backend-service")]["spec"]["ports"]
    frontend = objects[("Service", "frontend-service")]["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in backend] == [(8080, "http")]
    assert [(p["port"], p["targetPort"]) for p in frontend] == [(80, "http")]
    assert ports_by_name(objects[("Deployment", "backend-deployment")]) == {"http": 8080}
    assert ports_by_name(objects[("Deployment", "frontend-deployment")]) == {"http": 3000}
    assert ports_by_name(objects[("Deployment", "redis-deployment")]) == {"redis": 6379}


def test_probes_use_named_ports_and_the_health_endpoints(objects: Objects) -> None:
    expected = {
        ("backend-deployment", "backend"): ("/health", "/ready"),
        ("frontend-deployment", "frontend"): ("/api/health", "/api/health"),
    }
    for (deployment, name), (liveness, readiness) in expected.items():
        item = container(objects[("Deployment", deployment)], name)
        assert item["livenessProbe"]["httpGet"] == {"path": liveness, "port": "http"}
        assert item["readinessProbe"]["httpGet"] == {"path": readiness, "port": "http"}
    redis = container(objects[("Deployment", "redis-deployment")], "redis")
    assert redis["livenessProbe"]["tcpSocket"]["port"] == "redis"
    coturn = container(objects[("Deployment", "coturn-deployment")], "coturn")
    assert coturn["livenessProbe"]["tcpSocket"]["port"] == "turn-tcp"
    assert coturn["readinessProbe"]["tcpSocket"]["port"] == "turn-tcp"


def test_gateway_references(objects: Objects) -> None:
    gateway_class = objects[("GatewayClass", "social-media-gateway")]
    assert (
        gateway_class["spec"]["controllerName"] == "gateway.envoyproxy.io/gatewayclass-controller"
    )
    gateway = objects[("Gateway", "social-media-gateway")]
    parameters = gateway["spec"]["infrastructure"]["parametersRef"]
    assert (parameters["kind"], parameters["name"]) == ("EnvoyProxy", "social-media-proxy")
    assert (parameters["kind"], parameters["name"]) in objects
    assert gateway["spec"]["gatewayClassName"] == gateway_class["metadata"]["name"]
    listeners = {item["name"]: item for item in gateway["spec"]["listeners"]}
    for (kind, name), route in objects.items():
        if kind != "HTTPRoute":
            continue
        for parent in route["spec"]["parentRefs"]:
            assert ("Gateway", parent["name"]) in objects, (name, parent)
            listener = listeners[parent["sectionName"]]
            assert set(route["spec"]["hostnames"]) == {listener["hostname"]}, name
        for rule in route["spec"]["rules"]:
            for backend in rule.get("backendRefs", []):
                service = objects[("Service", backend["name"])]
                assert backend["port"] in [p["port"] for p in service["spec"]["ports"]], name


def test_routes_are_the_seeds(objects: Objects) -> None:
    """/ -> frontend-service:80 on 443; /api -> backend-service:8080 on 443; /ws ->
    backend-service:8080 on 443 and on the WebSocket listener 8080; 80 only redirects."""
    gateway = objects[("Gateway", "social-media-gateway")]
    listeners = {
        (item["name"], item["port"], item["protocol"]) for item in gateway["spec"]["listeners"]
    }
    assert listeners == {
        ("http", 80, "HTTP"),
        ("https", 443, "HTTPS"),
        ("websocket", 8080, "HTTPS"),
    }
    for item in gateway["spec"]["listeners"]:
        if item["protocol"] == "HTTPS":
            assert [ref["name"] for ref in item["tls"]["certificateRefs"]] == ["social-media-tls"]

    table = set()
    for (kind, _), route in objects.items():
        if kind != "HTTPRoute":
            continue
        sections = tuple(sorted(p["sectionName"] for p in route["spec"]["parentRefs"]))
        for rule in route["spec"]["rules"]:
            paths = [m["path"]["value"] for m in rule.get("matches", [])] or ["/"]
            targets = [(b["name"], b["port"]) for b in rule.get("backendRefs", [])]
            redirects = [
                f["requestRedirect"]
                for f in rule.get("filters", [])
                if f["type"] == "RequestRedirect"
            ]
            for path in paths:
                table.add((sections, path, tuple(targets), bool(redirects)))
    assert table == {
        (("http",), "/", (), True),
        (("https",), "/", (("frontend-service", 80),), False),
        (("https",), "/api", (("backend-service", 8080),), False),
        (("https", "websocket"), "/ws", (("backend-service", 8080),), False),
    }
    redirect = objects[("HTTPRoute", "http-to-https-redirect")]["spec"]["rules"][0]["filters"][0]
    assert redirect["requestRedirect"] == {"scheme": "https", "statusCode": 301}


def test_envoy_gateway_policies_target_what_exists(objects: Objects) -> None:
    gateway = objects[("Gateway", "social-media-gateway")]
    sections = {item["name"] for item in gateway["spec"]["listeners"]}
    for kind in ("ClientTrafficPolicy", "BackendTrafficPolicy"):
        for doc in [d for (k, _), d in objects.items() if k == kind]:
            for ref in doc["spec"]["targetRefs"]:
                assert (ref["kind"], ref["name"]) in objects, (kind, ref)
                if "sectionName" in ref:
                    assert ref["sectionName"] in sections
    client = objects[("ClientTrafficPolicy", "websocket-timeouts")]
    assert {r["sectionName"] for r in client["spec"]["targetRefs"]} == {"websocket", "https"}
    limited = {
        ref["name"]
        for (kind, _), doc in objects.items()
        if kind == "BackendTrafficPolicy" and "rateLimit" in doc["spec"]
        for ref in doc["spec"]["targetRefs"]
    }
    assert limited == {"backend-api-route", "backend-websocket-route"}


def test_websockets_of_one_room_hash_to_one_replica(objects: Objects) -> None:
    """Envoy hashes on the query parameter the web app puts on every WebSocket URL; what the
    Gateway does with the hash needs a cluster and is not proven here."""
    policy = objects[("BackendTrafficPolicy", "backend-websocket-policy")]["spec"]
    assert [ref["name"] for ref in policy["targetRefs"]] == ["backend-websocket-route"]
    balancer = policy["loadBalancer"]
    assert balancer["type"] == "ConsistentHash"
    assert balancer["consistentHash"]["type"] == "QueryParams"
    [param] = balancer["consistentHash"]["queryParams"]
    source = (DEVOPS.parent / "frontend" / "lib" / "api.ts").read_text()
    assert f"?{param['name']}=${{encodeURIComponent(roomId)}}" in source


def test_service_monitor_scrapes_the_backend_metrics_port(objects: Objects) -> None:
    monitor = objects[("ServiceMonitor", "backend-servicemonitor")]["spec"]
    assert monitor["namespaceSelector"]["matchNames"] == [NAMESPACE]
    selected = [
        name
        for (kind, name), doc in objects.items()
        if kind == "Service" and selects(monitor["selector"], doc["metadata"]["labels"])
    ]
    assert selected == ["backend-service"]
    [endpoint] = monitor["endpoints"]
    assert endpoint["interval"] == "30s"
    assert endpoint["path"] == "/metrics"
    service_ports = {p["name"]: p for p in objects[("Service", "backend-service")]["spec"]["ports"]}
    assert endpoint["port"] in service_ports
    # That Service port leads to the backend container, which serves /metrics.
    target = service_ports[endpoint["port"]]["targetPort"]
    assert target in ports_by_name(objects[("Deployment", "backend-deployment")])


def test_prometheus_rule_has_the_alerts_each_with_a_runbook(objects: Objects) -> None:
    rule = objects[("PrometheusRule", "backend-alerts")]
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "BackendDown",
        "HighEventLatency",
        "WebSocketErrorRate",
        "WebRTCConnectionFailureRate",
    } <= set(alerts)
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        for annotation in ("summary", "description", "runbook"):
            assert alert["annotations"].get(annotation, "").strip(), (name, annotation)
        # The job label the ServiceMonitor gives is the Service's name.
        assert 'job="backend-service"' in alert["expr"], name
    # kube-prometheus-stack's Prometheus (Helm release "prometheus") selects by this label.
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert (
        objects[("ServiceMonitor", "backend-servicemonitor")]["metadata"]["labels"]["release"]
        == "prometheus"
    )


def test_hpas_target_deployments_with_resource_requests(objects: Objects) -> None:
    expected = {
        "frontend-hpa": ("frontend-deployment", 2, 10, 70),
        "backend-hpa": ("backend-deployment", 2, 15, 60),
    }
    hpas = {name: doc for (kind, name), doc in objects.items() if kind == "HorizontalPodAutoscaler"}
    assert set(hpas) == set(expected)
    for name, (target, low, high, utilisation) in expected.items():
        spec = hpas[name]["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": target,
        }
        assert (spec["minReplicas"], spec["maxReplicas"]) == (low, high)
        metrics = {m["resource"]["name"]: m["resource"]["target"] for m in spec["metrics"]}
        assert metrics == {
            "cpu": {"type": "Utilization", "averageUtilization": utilisation},
            "memory": {"type": "Utilization", "averageUtilization": utilisation},
        }
        # +2 pods per 30 s up; -1 pod per 5 min down, after a 5-minute stabilization.
        assert spec["behavior"]["scaleUp"]["policies"] == [
            {"type": "Pods", "value": 2, "periodSeconds": 30}
        ]
        assert spec["behavior"]["scaleDown"]["policies"] == [
            {"type": "Pods", "value": 1, "periodSeconds": 300}
        ]
        assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
        deployment = objects[("Deployment", target)]
        assert deployment["spec"]["replicas"] == low
        for item in pod_spec(deployment)["containers"]:
            assert {"cpu", "memory"} <= set(item["resources"]["requests"]), (
                "Utilization needs requests"
            )


def test_pdbs_keep_one_pod_of_each_app(objects: Objects) -> None:
    pdbs = {name: doc for (kind, name), doc in objects.items() if kind == "PodDisruptionBudget"}
    assert set(pdbs) == {"frontend-pdb", "backend-pdb"}
    for name, pdb in pdbs.items():
        assert pdb["spec"]["minAvailable"] == 1
        matching = [
            d["metadata"]["name"]
            for d in deployments(objects)
            if selects(pdb["spec"]["selector"], pod_labels(d))
        ]
        assert matching == [f"{name.removesuffix('-pdb')}-deployment"]


def test_service_accounts_and_rbac(objects: Objects) -> None:
    for doc in deployments(objects):
        spec = pod_spec(doc)
        assert ("ServiceAccount", spec["serviceAccountName"]) in objects
        assert spec["automountServiceAccountToken"] is False
    assert (
        pod_spec(objects[("Deployment", "backend-deployment")])["serviceAccountName"]
        == "social-media-backend-sa"
    )
    binding = objects[("RoleBinding", "social-media-backend-rolebinding")]
    assert ("Role", binding["roleRef"]["name"]) in objects
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "social-media-backend-sa", "namespace": NAMESPACE}
    ]
    # Read-only, namespaced, no wildcards, no secrets.
    for (kind, _), doc in objects.items():
        assert kind != "ClusterRole" and kind != "ClusterRoleBinding"
        if kind == "Role":
            for rule in doc["rules"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}
                assert "*" not in rule["resources"] and "secrets" not in rule["resources"]


def test_secret_references_are_in_the_template(objects: Objects) -> None:
    template = {name: doc for (kind, name), doc in objects.items() if kind == "Secret"}
    for doc in deployments(objects):
        for item in pod_spec(doc)["containers"]:
            for value in env_of(item).values():
                if isinstance(value, dict) and "secretKeyRef" in value:
                    ref = value["secretKeyRef"]
                    assert ref["key"] in template[ref["name"]]["stringData"], ref
    # Placeholders only: too short for the backend to accept as a production secret.
    for doc in template.values():
        for value in doc["stringData"].values():
            assert "CHANGE-ME" in value
    assert len(template["backend-secrets"]["stringData"]["JWT_SECRET"]) < 32


def test_secrets_are_not_applied_by_the_kustomization() -> None:
    assert of_kind(deployed_documents(), "Secret") == []


# -- security and the seed's contract -----------------------------------------------------


def test_namespace_enforces_pod_security_restricted(objects: Objects) -> None:
    labels = objects[("Namespace", NAMESPACE)]["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    assert not [k for (k, _) in objects if k == "PodSecurityPolicy"], "removed in Kubernetes 1.25"


RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


@pytest.mark.parametrize(
    "name", ["backend-deployment", "frontend-deployment", "redis-deployment", "coturn-deployment"]
)
def test_pods_meet_the_restricted_pod_security_standard(objects: Objects, name: str) -> None:
    """The checks of the `restricted` Pod Security Standard, which the namespace enforces."""
    spec = pod_spec(objects[("Deployment", name)])
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] >= 10000
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(field)
    for volume in spec.get("volumes", []):
        assert set(volume) - {"name"} <= RESTRICTED_VOLUME_TYPES, volume
    mounts_needed = {
        "backend-deployment": {"/tmp"},
        "frontend-deployment": {"/tmp", "/app/.next/cache"},
        "redis-deployment": {"/data"},
        "coturn-deployment": {"/var/lib/coturn", "/etc/coturn", "/etc/coturn-tls"},
    }
    # The one capability the restricted standard lets a pod add, and only where the image
    # needs it to start at all (coturn.yaml, checkov.io/skip3).
    capabilities = {"drop": ["ALL"]}
    if name == "coturn-deployment":
        capabilities["add"] = ["NET_BIND_SERVICE"]
    empty_dirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    for item in spec["containers"]:
        context = item["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["runAsNonRoot"] is True
        assert context["capabilities"] == capabilities
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not context.get("privileged")
        for port in item.get("ports", []):
            assert "hostPort" not in port
        # Writes go to emptyDir volumes only; anything else is mounted read-only.
        assert {m["mountPath"] for m in item["volumeMounts"]} == mounts_needed[name]
        for mount in item["volumeMounts"]:
            assert mount["name"] in empty_dirs or mount.get("readOnly") is True, mount
        assert {"cpu", "memory"} <= set(item["resources"]["limits"])
        assert item["imagePullPolicy"] == "Always"
        assert ":" in item["image"] and not item["image"].endswith(":latest")


def test_rolling_updates_never_lose_capacity(objects: Objects) -> None:
    for name in ("backend-deployment", "frontend-deployment"):
        strategy = objects[("Deployment", name)]["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate"
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_backend_shutdown_budget_covers_prestop_and_drain(objects: Objects) -> None:
    """terminationGracePeriodSeconds >= preStop sleep + SHUTDOWN_DELAY_SECONDS +
    DRAIN_TIMEOUT_SECONDS + a margin for the runner's own cleanup, or the kubelet's SIGKILL
    cuts the WebSocket drain short."""
    deployment = objects[("Deployment", "backend-deployment")]
    backend = container(deployment, "backend")
    command = backend["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    env = env_of(backend)
    delay = float(env["SHUTDOWN_DELAY_SECONDS"])
    drain = float(env["DRAIN_TIMEOUT_SECONDS"])
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    assert pre_stop >= 5, "time for the endpoint removal to reach Envoy"
    assert grace >= pre_stop + delay + drain + 5
    assert drain >= 10


def test_backend_environment_is_production(objects: Objects) -> None:
    env = env_of(container(objects[("Deployment", "backend-deployment")], "backend"))
    assert env["APP_ENV"] == "production"
    assert env["PORT"] == "8080"
    assert env["ALLOWED_ORIGINS"] == "https://social-media.example.com"
    assert env["JWT_SECRET"] == {"secretKeyRef": {"name": "backend-secrets", "key": "JWT_SECRET"}}
    assert env["TURN_SECRET"] == {"secretKeyRef": {"name": "backend-secrets", "key": "TURN_SECRET"}}
    assert env["TURN_URLS"].startswith("turn:") and env["STUN_URLS"].startswith("stun:")
    for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_AUDIENCE"):
        assert env[name]["secretKeyRef"]["optional"] is True
    assert env["REDIS_URL"].endswith("@redis-service:6379/0")
    # Redis mode: each replica is reached by the others at its own pod address.
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["REPLICA_ADDRESS"] == "http://$(POD_IP):8080"
    frontend = env_of(container(objects[("Deployment", "frontend-deployment")], "frontend"))
    assert frontend == {
        "NODE_ENV": "production",
        "NEXT_TELEMETRY_DISABLED": "1",
        "BACKEND_URL": "http://backend-service:8080",
        "PORT": "3000",
        "HOSTNAME": "0.0.0.0",
    }


POD_IP = "10.244.1.23"


def kubelet_value(name: str, source: dict[str, Any]) -> str | None:
    """What the kubelet puts in a valueFrom variable here: a secret of the right shape (none
    for optional keys, which are not in the Secret deploy.sh creates), the pod's address."""
    if "secretKeyRef" in source:
        return None if source["secretKeyRef"].get("optional") else "s" * 48
    assert source == {"fieldRef": {"fieldPath": "status.podIP"}}, (name, source)
    return POD_IP


def test_backend_accepts_its_production_environment(objects: Objects) -> None:
    """The backend's own settings check passes on the Deployment's environment, expanded as
    the kubelet does ($(VAR) only from variables above it), secrets filled with values of the
    right shape (so the pods would not refuse to start)."""
    from videoconf.config import Settings

    env = resolved_env(
        container(objects[("Deployment", "backend-deployment")], "backend"), kubelet_value
    )
    unexpanded = {name: value for name, value in env.items() if "$(" in value}
    assert unexpanded == {}, "a $(VAR) is expanded only when VAR is defined above it"
    settings = Settings.from_env(env)
    assert settings.production
    assert settings.port == 8080
    assert settings.guest_auth is True
    assert settings.drain_timeout == 20.0
    # Redis mode, with the same JWT_SECRET on every replica (one Secret) and the pod's address.
    assert settings.redis_url == f"redis://:{'s' * 48}@redis-service:6379/0"
    assert settings.replica_address == f"http://{POD_IP}:8080"
    assert settings.lease_seconds == 5.0
    assert not settings.jwt_secret_generated
    # Calls across NATs: STUN and TURN (UDP, TCP, TLS) on coturn, credentials from TURN_SECRET.
    assert settings.turn_secret == "s" * 48
    assert len(settings.turn_urls) == 3 and len(settings.stun_urls) == 1


def test_the_seeds_names(objects: Objects) -> None:
    for kind, name in [
        ("Namespace", "social-media"),
        ("Deployment", "backend-deployment"),
        ("Deployment", "frontend-deployment"),
        ("Service", "backend-service"),
        ("Service", "frontend-service"),
        ("ServiceAccount", "social-media-backend-sa"),
        ("Gateway", "social-media-gateway"),
        ("GatewayClass", "social-media-gateway"),
        ("HorizontalPodAutoscaler", "frontend-hpa"),
        ("HorizontalPodAutoscaler", "backend-hpa"),
        ("Application", "video-conferencing"),
    ]:
        assert (kind, name) in objects
    assert [
        c["name"] for c in pod_spec(objects[("Deployment", "backend-deployment")])["containers"]
    ] == ["backend"]
    assert [
        c["name"] for c in pod_spec(objects[("Deployment", "frontend-deployment")])["containers"]
    ] == ["frontend"]
    application = objects[("Application", "video-conferencing")]["spec"]
    assert application["source"]["path"] == "devops/kubernetes"
    assert application["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


def test_no_sidecars(objects: Objects) -> None:
    for doc in deployments(objects):
        spec = pod_spec(doc)
        assert len(spec["containers"]) == 1
        assert "initContainers" not in spec


# -- coturn -------------------------------------------------------------------------------


# The certificate of TURN over TLS: a kubernetes.io/tls Secret of its own (the Gateway's
# social-media-tls names the web app's host, not turn.<host>), which deploy.sh warns about.
TURN_TLS_SECRET = "social-media-turn-tls"
TURN_TLS_DIR = "/etc/coturn-tls"
# The Service's port for TURN over TLS: 443, which the strictest firewalls let out (coturn's
# own address, so the Gateway's 443 is not in the way); it leads to tls-listening-port.
TURNS_PUBLISHED_PORT = 443


def relay_range() -> range:
    options = turnserver_options(TURNSERVER_CONF.read_text())
    return range(int(options["min-port"][0]), int(options["max-port"][0]) + 1)


def tls_port() -> int:
    return int(turnserver_options(TURNSERVER_CONF.read_text())["tls-listening-port"][0])


def turn_ports() -> set[tuple[int, str]]:
    """What coturn listens on: STUN/TURN on 3478 (UDP and TCP), TURN over TLS on its
    tls-listening-port (5349), and its UDP relay range."""
    return {(3478, "UDP"), (3478, "TCP"), (tls_port(), "TCP")} | {
        (port, "UDP") for port in relay_range()
    }


def published_ports() -> set[tuple[int, str]]:
    """What coturn-service publishes: the same, with TURN over TLS on 443 instead."""
    return turn_ports() - {(tls_port(), "TCP")} | {(TURNS_PUBLISHED_PORT, "TCP")}


def test_coturn_runs_the_compose_file_with_the_backends_secret(objects: Objects) -> None:
    config = objects[("ConfigMap", "coturn-config")]["data"]
    assert config == {"turnserver.conf": TURNSERVER_CONF.read_text()}, (
        "the ConfigMap holds devops/local/turnserver.conf word for word"
    )
    deployment = objects[("Deployment", "coturn-deployment")]
    coturn = container(deployment, "coturn")
    # turnserver itself: the image's entrypoint would pass the arguments through `eval`.
    assert coturn["command"] == ["turnserver"]
    assert coturn["args"][:2] == ["-c", "/etc/coturn/turnserver.conf"]
    [mount] = [m for m in coturn["volumeMounts"] if m["mountPath"] == "/etc/coturn"]
    [volume] = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"] == {"name": "coturn-config"}
    # The same Secret key as the backend's TURN_SECRET, handed to coturn's static-auth-secret.
    env = env_of(coturn)
    backend = env_of(container(objects[("Deployment", "backend-deployment")], "backend"))
    assert env["TURN_SECRET"] == backend["TURN_SECRET"]
    assert "--static-auth-secret=$(TURN_SECRET)" in coturn["args"]
    # Every $(VAR) of the arguments is defined (the kubelet leaves unknown ones as written).
    for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(coturn["args"])):
        assert name in env, name
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert "--external-ip=$(TURN_EXTERNAL_IP)/$(POD_IP)" in coturn["args"]
    # The command line adds what differs per place; it never overrides the file silently.
    options = turnserver_options(TURNSERVER_CONF.read_text())
    given = {arg.removeprefix("--").partition("=")[0] for arg in coturn["args"][2:]}
    assert given == {
        "static-auth-secret",
        "listening-ip",
        "relay-ip",
        "external-ip",
        "cert",
        "pkey",
    }
    assert not given & set(options)
    # TLS is on in the file (no no-tls), with its certificate and key from the Secret, mounted
    # read-only; optional, so that coturn starts (without TLS) before the Secret exists.
    assert "no-tls" not in options
    assert f"--cert={TURN_TLS_DIR}/tls.crt" in coturn["args"]
    assert f"--pkey={TURN_TLS_DIR}/tls.key" in coturn["args"]
    [mount] = [m for m in coturn["volumeMounts"] if m["mountPath"] == TURN_TLS_DIR]
    assert mount["readOnly"] is True
    [volume] = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == TURN_TLS_SECRET
    assert volume["secret"]["optional"] is True
    # Readable by the owner (root) and coturn's group (fsGroup) only: 0440.
    assert volume["secret"]["defaultMode"] == 0o440
    assert (
        pod_spec(deployment)["securityContext"]["fsGroup"]
        == (pod_spec(deployment)["securityContext"]["runAsGroup"])
    )
    # deploy.sh warns about the same Secret when it is missing.
    assert f'TURN_TLS_SECRET="{TURN_TLS_SECRET}"' in (DEVOPS / "deploy.sh").read_text()
    # The database and pid file of the file are on the pod's writable volume.
    writable = {m["mountPath"] for m in coturn["volumeMounts"] if not m.get("readOnly")}
    for name in ("userdb", "pidfile"):
        assert options[name][0].rpartition("/")[0] in writable, name


def test_coturn_service_publishes_exactly_the_turn_and_relay_ports(objects: Objects) -> None:
    service = objects[("Service", "coturn-service")]["spec"]
    assert service["type"] == "LoadBalancer"
    assert service["externalTrafficPolicy"] == "Local", "TURN permissions need client addresses"
    published = {(p["port"], p["protocol"]) for p in service["ports"]}
    assert published == published_ports()
    assert len(service["ports"]) == len(published)
    deployment = objects[("Deployment", "coturn-deployment")]
    declared = {
        (p["containerPort"], p["protocol"]) for p in container(deployment, "coturn")["ports"]
    }
    assert declared == turn_ports()
    named = {
        p["name"]: (p["containerPort"], p["protocol"])
        for p in container(deployment, "coturn")["ports"]
    }
    # Each port leads to the same port of the pod, except TURN over TLS: 443 to 5349.
    for port in service["ports"]:
        if port["port"] == TURNS_PUBLISHED_PORT:
            assert named[port["targetPort"]] == (tls_port(), "TCP"), port
        else:
            assert named[port["targetPort"]] == (port["port"], port["protocol"]), port
    # The NetworkPolicy lets in exactly those ports, from anywhere.
    policy = objects[("NetworkPolicy", "coturn-network-policy")]["spec"]
    [rule] = policy["ingress"]
    opened = {
        (port, p["protocol"])
        for p in rule["ports"]
        for port in range(p["port"], p.get("endPort", p["port"]) + 1)
    }
    assert opened == turn_ports()
    assert rule["from"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]


def test_coturn_is_one_replica_replaced_not_rolled(objects: Objects) -> None:
    """An allocation lives in one coturn; the load balancer's relay ports must lead to it."""
    spec = objects[("Deployment", "coturn-deployment")]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    assert not [
        doc
        for (kind, _), doc in objects.items()
        if kind in {"HorizontalPodAutoscaler", "PodDisruptionBudget"}
        and "coturn" in str(doc["spec"])
    ]
    image = container(objects[("Deployment", "coturn-deployment")], "coturn")["image"]
    assert re.fullmatch(r"coturn/coturn:4\.[67]\.\d+", image), image


def test_backend_ice_urls_lead_to_coturns_service(objects: Objects) -> None:
    env = env_of(container(objects[("Deployment", "backend-deployment")], "backend"))
    published = {
        (p["port"], p["protocol"]) for p in objects[("Service", "coturn-service")]["spec"]["ports"]
    }
    # Comma-separated; the backend trims the spaces the folded YAML leaves after the commas.
    urls = [url.strip() for url in env["TURN_URLS"].split(",") + env["STUN_URLS"].split(",")]
    transports = set()
    for url in urls:
        scheme, _, rest = url.partition(":")
        address, _, query = rest.partition("?")
        host, _, port = address.rpartition(":")
        transport = (query.removeprefix("transport=") or "udp").upper()
        assert scheme in {"turn", "turns", "stun"}, url
        # A name under the site's own domain (one domain to change, README "Custom Domains").
        assert host == f"turn.{urlsplit(env['ALLOWED_ORIGINS']).hostname}", url
        assert (int(port), transport) in published, url
        # turns: only where the Service leads to coturn's TLS listener, and TLS nowhere else.
        assert (scheme == "turns") == (int(port) == TURNS_PUBLISHED_PORT), url
        transports.add((scheme, transport))
    # TURN over UDP, over TCP (for networks that block UDP) and over TLS on 443 (for networks
    # that let only TLS out).
    assert transports == {("turn", "UDP"), ("turn", "TCP"), ("turns", "TCP"), ("stun", "UDP")}
