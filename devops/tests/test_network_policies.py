"""The NetworkPolicies let exactly the seed's flows through, and nothing else.

A small evaluator of NetworkPolicy semantics (networking.k8s.io/v1: a pod selected by a policy
of a direction is isolated in that direction; a flow passes when the source's egress and the
destination's ingress both allow it; peers by podSelector, namespaceSelector, both, or
ipBlock with except; ports by number, by a port..endPort range, or all of a protocol) runs
every flow between a set of pods and hosts and compares the allowed ones with the list below.
Every Deployment is modelled as two pods, so that traffic between replicas of one app (the
backend's replicas forwarding WebSockets to each other) is a flow like any other, (app, app,
port): allowed for the backend on 8080, refused for the rest.

What it cannot prove: that the cluster's CNI enforces NetworkPolicies at all (some do not),
and how a CNI treats traffic from the node itself (kubelet probes) or from port-forwards.
Pod addresses matched by ipBlock are not modelled: the ipBlock rule here excludes the private
ranges where pod addresses live.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any
from urllib.parse import urlsplit

from devopslib import NAMESPACE, container, env_of, pod_labels, selects


@dataclasses.dataclass(frozen=True)
class Endpoint:
    name: str
    namespace: str | None  # None: a host outside the cluster
    labels: tuple[tuple[str, str], ...] = ()
    ip: str = "10.244.0.10"
    ports: tuple[tuple[int, str], ...] = ()  # what it listens on

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def peer_matches(peer: dict[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        if other.namespace is not None:
            return False  # pod addresses are in the excluded private ranges, see above
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], namespace_labels(other.namespace)):
            return False
    elif other.namespace != policy_namespace:
        return False
    if "podSelector" in peer:
        return selects(peer["podSelector"], other.label_map)
    return True


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == protocol
        and ("port" not in p or p["port"] <= port <= p.get("endPort", p["port"]))
        for p in ports
    )


def allowed(
    policies: list[dict[str, Any]],
    direction: str,
    subject: Endpoint,
    other: Endpoint,
    port: int,
    protocol: str,
) -> bool:
    """Whether `subject` may send (Egress) to / receive (Ingress) from `other` on port."""
    if subject.namespace is None:
        return True  # hosts outside the cluster are not governed by these policies
    relevant = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and direction in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"] or {"matchLabels": {}}, subject.label_map)
    ]
    if not relevant:
        return True
    field, peers_field = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in relevant:
        for rule in policy["spec"].get(field) or []:
            peers = rule.get(peers_field)
            peer_ok = not peers or any(
                peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers
            )
            if peer_ok and port_matches(rule.get("ports"), port, protocol):
                return True
    return False


# Pods per Deployment in the model: two, so that flows between replicas are evaluated.
REPLICAS = 2


def endpoints(objects: dict[tuple[str, str], dict[str, Any]]) -> list[Endpoint]:
    found = []
    for (kind, name), doc in objects.items():
        if kind == "Deployment":
            ports = tuple(
                (p["containerPort"], p.get("protocol", "TCP"))
                for c in doc["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])
            )
            found += [
                Endpoint(
                    name.removesuffix("-deployment"),
                    NAMESPACE,
                    tuple(pod_labels(doc).items()),
                    ip=f"10.244.{len(found) + replica}.10",
                    ports=ports,
                )
                for replica in range(REPLICAS)
            ]
    found += [
        Endpoint(
            "envoy",
            "envoy-gateway-system",
            (("app.kubernetes.io/name", "envoy"),),
            ports=((10443, "TCP"),),
        ),
        Endpoint(
            "prometheus",
            "monitoring",
            (("app.kubernetes.io/name", "prometheus"),),
            ports=((9090, "TCP"),),
        ),
        Endpoint(
            "dns", "kube-system", (("k8s-app", "kube-dns"),), ports=((53, "UDP"), (53, "TCP"))
        ),
        Endpoint("debug-pod", NAMESPACE, (("run", "debug"),), ports=((8000, "TCP"),)),
        Endpoint(
            "other-namespace",
            "default",
            (("app.kubernetes.io/name", "backend"),),
            ports=((8080, "TCP"),),
        ),
        # A browser's media port (UDP 50000) on the internet and on a private host: where
        # coturn relays to, and where it must not.
        Endpoint(
            "internet",
            None,
            ip="93.184.215.14",
            ports=((443, "TCP"), (80, "TCP"), (6379, "TCP"), (50000, "UDP")),
        ),
        Endpoint("private-host", None, ip="10.0.0.5", ports=((443, "TCP"), (50000, "UDP"))),
        Endpoint("cloud-metadata", None, ip="169.254.169.254", ports=((80, "TCP"), (443, "TCP"))),
    ]
    return found


# coturn (coturn.yaml): STUN/TURN on 3478 over UDP and TCP, TURN over TLS on 5349 (the pod's
# port; its Service publishes it on 443), and its UDP relay ports (min-port..max-port of
# devops/local/turnserver.conf, which test_cross_references.py ties to the Service and to this
# policy).
TURN_PORTS = [(3478, "UDP"), (3478, "TCP"), (5349, "TCP")] + [
    (port, "UDP") for port in range(49152, 49252)
]
# Anyone outside the cluster may reach coturn: browsers come through its load balancer with
# their own addresses, private ones included (the modelled hosts outside the cluster).
OUTSIDE = ("internet", "private-host", "cloud-metadata")

# The seed's flows, the two that running them needs (DNS; Auth0's JWKS over HTTPS), the
# backend's replicas reaching each other (a WebSocket forwarded to its room's owner), and
# TURN: browsers to coturn, coturn's relayed media to the public internet only.
EXPECTED = {
    ("envoy", "frontend", 3000, "TCP"),
    ("envoy", "backend", 8080, "TCP"),
    ("frontend", "backend", 8080, "TCP"),
    ("prometheus", "backend", 8080, "TCP"),
    ("backend", "backend", 8080, "TCP"),
    ("backend", "redis", 6379, "TCP"),
    ("frontend", "dns", 53, "UDP"),
    ("frontend", "dns", 53, "TCP"),
    ("backend", "dns", 53, "UDP"),
    ("backend", "dns", 53, "TCP"),
    ("backend", "internet", 443, "TCP"),
    *((host, "coturn", port, protocol) for host in OUTSIDE for port, protocol in TURN_PORTS),
    ("coturn", "internet", 50000, "UDP"),
}


def flows(objects: dict[tuple[str, str], dict[str, Any]]) -> set[tuple[str, str, int, str]]:
    """Every (source, target, port, protocol) the policies let through, between two distinct
    pods or hosts (a pod reaching itself is not subject to NetworkPolicies)."""
    policies = [doc for (kind, _), doc in objects.items() if kind == "NetworkPolicy"]
    everyone = endpoints(objects)
    assert len(everyone) == len(set(everyone)), "every modelled pod is distinct"
    observed = set()
    for source in everyone:
        for target in everyone:
            if source == target or NAMESPACE not in {source.namespace, target.namespace}:
                continue
            for port, protocol in target.ports:
                if allowed(policies, "Egress", source, target, port, protocol) and allowed(
                    policies, "Ingress", target, source, port, protocol
                ):
                    observed.add((source.name, target.name, port, protocol))
    return observed


def test_network_policies_allow_exactly_the_seeds_flows(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert flows(objects) == EXPECTED


def test_replicas_reach_each_other_where_replica_address_says(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """REPLICA_ADDRESS is the pod's own address on its http port, which the policies open
    between backend pods (and only between backend pods: no other app's replicas talk)."""
    backend = container(objects[("Deployment", "backend-deployment")], "backend")
    env = env_of(backend)
    assert env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    http = {p["name"]: p["containerPort"] for p in backend["ports"]}["http"]
    address = urlsplit(env["REPLICA_ADDRESS"])
    assert (address.scheme, address.netloc, address.path) == ("http", f"$(POD_IP):{http}", "")
    between_replicas = {flow for flow in flows(objects) if flow[0] == flow[1]}
    assert between_replicas == {("backend", "backend", http, "TCP")}


def test_namespaces_are_selected_by_their_metadata_name(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for (kind, _), doc in objects.items():
        if kind != "NetworkPolicy":
            continue
        for rule in [*(doc["spec"].get("ingress") or []), *(doc["spec"].get("egress") or [])]:
            for peer in rule.get("from", []) + rule.get("to", []):
                if "namespaceSelector" in peer:
                    assert set(peer["namespaceSelector"]["matchLabels"]) == {
                        "kubernetes.io/metadata.name"
                    }


def test_default_deny_covers_every_pod(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    deny = objects[("NetworkPolicy", "default-deny-all")]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_coturn_relays_to_the_internet_only_and_no_pod_reaches_it(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """The second fence besides turnserver.conf's denied-peer-ip: even a relay asked for a pod,
    the node's network or the cloud metadata service gets nowhere; and nothing in the cluster
    talks to coturn (the backend shares a secret with it, no connection)."""
    allowed = flows(objects)
    assert {flow for flow in allowed if flow[0] == "coturn"} == {
        ("coturn", "internet", 50000, "UDP")
    }
    assert {flow[0] for flow in allowed if flow[1] == "coturn"} == set(OUTSIDE)
