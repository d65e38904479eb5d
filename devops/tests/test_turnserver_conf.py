"""devops/local/turnserver.conf is a real coturn configuration, and a safe one.

Debian's `turnserver` (package coturn) is started with that very file (`-c`), plus command-line
options for what differs where it runs: loopback addresses and free ports in place of the
pod's or the compose network's, the secret, a private database and pid file. Then:

- credentials the backend mints (`videoconf.turn`, from settings built as in production) allocate
  a relay over UDP and over TCP, in the relay range given, and `turnutils_uclient` relays data
  through two allocations with them; a wrong credential and an expired username are refused;
- asking for a permission towards any address of the private, loopback, link-local (cloud
  metadata), shared, documentation and IPv6 special ranges is refused with 403, while a public
  address and the relay's own address (relay to relay) are allowed. A permission only installs
  a rule in coturn: nothing is ever sent to those addresses, every packet stays on loopback;
- the secret never appears in coturn's output.

backend/tests/e2e/test_coturn.py proves the scheme through the backend's HTTP API against a
coturn configured on its command line; its helpers (free ports, the STUN readiness probe,
turnutils_uclient, aioice's allocation) are reused here, not copied.

Relay to relay (two relayed browsers) needs coturn to relay to its own relay address, the one
private address it may use. It is given as where it runs: in Kubernetes as the private part of
`--external-ip=<public>/<pod address>` (coturn maps the public address back and allows that
address itself), in compose as `--allowed-peer-ip`. Both ways are tried, with 127.0.0.1 as
that address and a documentation address as the public one; since 127.0.0.1 is loopback,
which coturn refuses apart from the file's ranges, the test adds --allow-loopback-peers:
127.0.0.2 and ::1 stay refused, by the file's own denied-peer-ip lines.

What it cannot prove: the coturn/coturn image itself (this is Debian's 4.6.1, the image is
4.6.2: same options), the load balancer, and clients on other machines.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol
from devopslib import ROOT, TURNSERVER_CONF, need_program, turnserver_options
from videoconf.config import Settings
from videoconf.turn import ice_servers, turn_credential, turn_username

WAIT = 20.0
SECRET = "devops-turnserver-conf-" + "t" * 32
RELAY_PORTS = 12
UDP_TRANSPORT = 0x11000000  # REQUESTED-TRANSPORT: UDP (17)
IPV6_FAMILY = 0x02  # REQUESTED-ADDRESS-FAMILY (RFC 6156)


def backend_coturn_helpers() -> ModuleType:
    """backend/tests/e2e/test_coturn.py as a module, for its helpers."""
    path = ROOT / "backend" / "tests" / "e2e" / "test_coturn.py"
    spec = importlib.util.spec_from_file_location("backend_e2e_test_coturn", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


helpers = backend_coturn_helpers()

# Addresses coturn must never relay to, one or more per denied range, and the ones a Kubernetes
# cluster or a Docker host typically uses: pods (10.244/16 kind and flannel, 10.42/16 k3s,
# 100.64/10 some managed clusters), Services (10.96/12), docker0 (172.17/16), minikube
# (192.168.49/24), the cloud metadata service.
REFUSED_IPV4 = [
    "0.0.0.1",
    "10.0.0.5",
    "10.244.1.23",
    "10.42.0.9",
    "10.96.0.1",
    "100.64.0.7",
    "127.0.0.2",
    "169.254.169.254",
    "172.16.0.1",
    "172.17.0.1",
    "172.31.255.254",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "192.168.49.2",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.10",
    "224.0.0.251",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
]
REFUSED_IPV6 = [
    "::1",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:8.8.8.8",
    "64:ff9b::a00:1",
    "64:ff9b:1::a00:1",
    "100::1",
    "2001::1",
    "2001:db8::1",
    "2002:a00:1::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "ff02::1",
]
PUBLIC_IPV4 = ["93.184.215.14", "8.8.8.8", "1.1.1.1"]
# The load balancer's address in the "cluster" way of running (a documentation address: a
# permission towards it is mapped back to the relay's own, nothing is ever sent to it).
EXTERNAL_IP = "198.51.100.200"
# How coturn is allowed its own relay address (see the top of this file).
PLACES = {
    "cluster": [f"--external-ip={EXTERNAL_IP}/127.0.0.1"],
    "compose": ["--allowed-peer-ip=127.0.0.1"],
}
# The unspecified addresses, which coturn refuses by itself (no range of the file may start
# there: coturn would read it as "any address").
UNSPECIFIED = {4: "0.0.0.0", 6: "::"}
PUBLIC_IPV6 = ["2606:4700:4700::1111", "2a00:1450:4001::1"]


# -- the file itself ----------------------------------------------------------------------


def ranges(options: dict[str, list[str]], name: str) -> list[tuple[Any, Any]]:
    found = []
    for value in options.get(name, []):
        first, _, last = value.partition("-")
        found.append((ipaddress.ip_address(first), ipaddress.ip_address(last or first)))
    return found


def covered(address: str, spans: list[tuple[Any, Any]]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == a.version and a <= ip <= b for a, b in spans)


def test_the_file_holds_the_settings_that_make_it_safe() -> None:
    options = turnserver_options(TURNSERVER_CONF.read_text())
    for flag in (
        "use-auth-secret",
        "fingerprint",
        "no-cli",
        "no-tcp-relay",
        "no-multicast-peers",
        "no-tls",
        "no-dtls",
        "no-software-attribute",
        "no-rfc5780",
        "no-stun-backward-compatibility",
    ):
        assert options.get(flag) == [""], flag
    assert options["listening-port"] == ["3478"]
    assert options["realm"] and options["stale-nonce"] == ["600"]
    first, last = int(options["min-port"][0]), int(options["max-port"][0])
    assert 1024 < first <= last <= 65535 and last - first + 1 <= 200, "a bounded relay range"
    # Only the REST scheme: no static users, no anonymous access, no other mechanism, and the
    # secret never in the file (it comes on the command line, from TURN_SECRET).
    for forbidden in (
        "static-auth-secret",
        "lt-cred-mech",
        "no-auth",
        "user",
        "allow-loopback-peers",
        "allowed-peer-ip",
        "web-admin",
        "cli-password",
        "prometheus",
    ):
        assert forbidden not in options, forbidden
    # What differs where it runs is not here either.
    for per_place in ("listening-ip", "relay-ip", "external-ip"):
        assert per_place not in options, per_place
    assert options["log-file"] == ["stdout"]


def test_denied_ranges_cover_the_private_and_cluster_addresses() -> None:
    spans = ranges(turnserver_options(TURNSERVER_CONF.read_text()), "denied-peer-ip")
    multicast = ["224.0.0.251", "239.255.255.250", "ff02::1"]  # no-multicast-peers
    for address in REFUSED_IPV4 + REFUSED_IPV6:
        assert covered(address, spans) or address in multicast, address
    for address in PUBLIC_IPV4 + PUBLIC_IPV6:
        assert not covered(address, spans), address
    for a, b in spans:
        assert a <= b, (a, b)
        assert not a.is_unspecified, f"{a}: coturn reads a range from it as any address"
        if a.version == 6:
            # coturn compares IPv6 addresses byte by byte: only a CIDR block is what it says.
            assert len(list(ipaddress.summarize_address_range(a, b))) == 1, (a, b)


# -- a real coturn with it ----------------------------------------------------------------


def loopback_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@dataclass
class TurnServer:
    port: int
    relay_ports: range
    relay_address: str  # what clients get as their relay address (IPv4)
    ipv6: bool
    process: asyncio.subprocess.Process
    output: bytes = b""


@pytest.fixture
async def turnserver(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[TurnServer]:
    """Debian's turnserver with the file, as in the cluster (or, with the parameter
    "compose", as in docker-compose.yml), on loopback and free ports."""
    place = getattr(request, "param", "cluster")
    binary = need_program("turnserver", "apt-get install coturn")
    port, relays = helpers.free_port(), helpers.free_udp_range(RELAY_PORTS)
    ipv6 = loopback_ipv6()
    addresses = ["127.0.0.1", "::1"] if ipv6 else ["127.0.0.1"]
    process = await asyncio.create_subprocess_exec(
        binary,
        "-c",
        str(TURNSERVER_CONF),
        *(f"--listening-ip={a}" for a in addresses),
        *(f"--relay-ip={a}" for a in addresses),
        f"--listening-port={port}",
        f"--min-port={relays}",
        f"--max-port={relays + RELAY_PORTS - 1}",
        f"--static-auth-secret={SECRET}",
        # The relay's own address, and loopback for it (see the top of this file).
        *PLACES[place],
        "--allow-loopback-peers",
        f"--userdb={tmp_path / 'turndb'}",
        f"--pidfile={tmp_path / 'turnserver.pid'}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    relay_address = EXTERNAL_IP if place == "cluster" else "127.0.0.1"
    server = TurnServer(port, range(relays, relays + RELAY_PORTS), relay_address, ipv6, process)
    try:
        deadline = time.monotonic() + WAIT
        while not await helpers.answers_stun(port):
            if process.returncode is not None or time.monotonic() > deadline:
                output = (await helpers.stop(process)).decode(errors="replace")
                raise AssertionError(f"turnserver -c {TURNSERVER_CONF} did not start:\n{output}")
            await asyncio.sleep(0.1)
        yield server
    finally:
        server.output = await helpers.stop(process)
    assert SECRET.encode() not in server.output, "the TURN secret must never be logged"


def backend_credentials(server: TurnServer) -> dict[str, Any]:
    """A signed-in participant's TURN entry, as the backend builds it from its environment."""
    settings = Settings.from_env(
        {
            "TURN_URLS": f"turn:127.0.0.1:{server.port}?transport=udp,"
            f"turn:127.0.0.1:{server.port}?transport=tcp",
            "TURN_SECRET": SECRET,
            "TURN_TTL": "600",
        }
    )
    [turn] = ice_servers(settings, "ada", time.time())
    return turn


class Client:
    """One TURN client (aioice's protocol) holding one allocation."""

    def __init__(self, protocol: Any, transport: asyncio.BaseTransport) -> None:
        self.protocol = protocol
        self.transport = transport
        self.relayed: tuple[str, int] = ("", 0)
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    async def request(self, request: stun.Message) -> int | None:
        """None on success, else the STUN error code."""
        try:
            response, _ = await asyncio.wait_for(self.protocol.request_with_retry(request), WAIT)
        except stun.TransactionFailed as failure:
            return int(failure.response.error_code)
        if request.message_method == stun.Method.ALLOCATE:
            self.relayed = response.attributes["XOR-RELAYED-ADDRESS"]
        return None

    async def allocate(self, ipv6: bool = False) -> int | None:
        request = stun.Message(
            message_method=stun.Method.ALLOCATE, message_class=stun.Class.REQUEST
        )
        request.attributes["LIFETIME"] = 60
        request.attributes["REQUESTED-TRANSPORT"] = UDP_TRANSPORT
        if ipv6:
            request.attributes["REQUESTED-ADDRESS-FAMILY"] = IPV6_FAMILY
        return await self.request(request)

    async def permission(self, peer: str) -> int | None:
        """CreatePermission towards `peer` (nothing is sent to it)."""
        request = stun.Message(
            message_method=stun.Method.CREATE_PERMISSION, message_class=stun.Class.REQUEST
        )
        request.attributes["XOR-PEER-ADDRESS"] = (peer, 9)
        return await self.request(request)


class Collect(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[bytes]) -> None:
        self.queue = queue

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(data)


@pytest.fixture
def requested_address_family(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice knows no REQUESTED-ADDRESS-FAMILY (RFC 6156), which an IPv6 relay needs: add
    it to its attribute tables for the test."""
    entry = (
        0x0017,
        "REQUESTED-ADDRESS-FAMILY",
        lambda family: struct.pack("!B3x", family),
        lambda data: data[0],
    )
    monkeypatch.setitem(stun.ATTRIBUTES_BY_NAME, entry[1], entry)
    monkeypatch.setitem(stun.ATTRIBUTES_BY_TYPE, entry[0], entry)


@pytest.fixture
async def clients() -> AsyncIterator[Any]:
    made: list[Client] = []

    async def connect(
        server: TurnServer,
        username: str,
        password: str,
        transport: str = "udp",
        host: str = "127.0.0.1",
    ) -> Client:
        loop = asyncio.get_running_loop()
        address = (host, server.port)
        options = {"username": username, "password": password, "lifetime": 60}
        options["channel_refresh_time"] = 500
        if transport == "tcp":
            inner, protocol = await loop.create_connection(
                lambda: TurnClientTcpProtocol(address, **options), host=host, port=server.port
            )
        else:
            inner, protocol = await loop.create_datagram_endpoint(
                lambda: TurnClientUdpProtocol(address, **options), remote_addr=address
            )
        client = Client(protocol, inner)
        protocol.receiver = Collect(client.received)
        made.append(client)
        return client

    yield connect
    for client in made:
        client.transport.close()


async def test_backend_credentials_allocate_relays_and_others_are_refused(
    turnserver: TurnServer, clients: Any
) -> None:
    turn = backend_credentials(turnserver)
    assert turn["urls"][0] == f"turn:127.0.0.1:{turnserver.port}?transport=udp"
    username, password = turn["username"], turn["credential"]
    for transport in ("udp", "tcp"):
        client = await clients(turnserver, username, password, transport)
        assert await client.allocate() is None, transport
        # A UDP relay (no-tcp-relay) on the relay address (the load balancer's, mapped by
        # --external-ip), in the range given.
        assert client.relayed[0] == turnserver.relay_address == EXTERNAL_IP
        assert client.relayed[1] in turnserver.relay_ports, client.relayed

    wrong = turn_credential("not-the-secret-" + "x" * 32, username)
    assert await (await clients(turnserver, username, wrong)).allocate() == 401
    client_id = username.partition(":")[2]
    expired = turn_username(client_id, int(time.time()) - 60)
    signed = turn_credential(SECRET, expired)
    assert await (await clients(turnserver, expired, signed)).allocate() == 401

    # turnutils_uclient: two allocations, data from one relay to the other (relay to relay,
    # as two relayed browsers) with the backend's credentials; nothing with a wrong one.
    need_program("turnutils_uclient", "apt-get install coturn")
    outcome = await helpers.uclient(turnserver.port, username, password)
    assert outcome.code == 0, outcome.output
    assert helpers.relayed_messages(outcome) > 0, outcome.output
    helpers.assert_refused(await helpers.uclient(turnserver.port, username, wrong))


@pytest.mark.parametrize("turnserver", list(PLACES), indirect=True)
async def test_relaying_to_private_and_cluster_addresses_is_refused(
    turnserver: TurnServer, clients: Any
) -> None:
    turn = backend_credentials(turnserver)
    client = await clients(turnserver, turn["username"], turn["credential"])
    assert await client.allocate() is None
    refused = {address: await client.permission(address) for address in REFUSED_IPV4}
    assert refused == dict.fromkeys(REFUSED_IPV4, 403)
    assert await client.permission(UNSPECIFIED[4]) == 403
    allowed = {address: await client.permission(address) for address in PUBLIC_IPV4}
    assert allowed == dict.fromkeys(PUBLIC_IPV4, None)
    # Its own relay address: two relayed browsers reach each other, media flows. Only its
    # own: the address next to it stays refused.
    other = await clients(turnserver, turn["username"], turn["credential"])
    assert await other.allocate() is None
    assert client.relayed[0] == other.relayed[0] == turnserver.relay_address
    assert await client.permission(turnserver.relay_address) is None
    neighbour = ipaddress.ip_address(turnserver.relay_address) + 1
    assert await client.permission(str(neighbour)) == 403
    await other.protocol.send_data(b"hello from the other relay", client.relayed)
    await client.protocol.send_data(b"relayed", other.relayed)
    assert await asyncio.wait_for(other.received.get(), WAIT) == b"relayed"


@pytest.mark.usefixtures("requested_address_family")
async def test_relaying_to_ipv6_special_addresses_is_refused(
    turnserver: TurnServer, clients: Any
) -> None:
    if not turnserver.ipv6:
        pytest.skip("no IPv6 on loopback (::1) here: the IPv6 ranges are checked in the file only")
    turn = backend_credentials(turnserver)
    client = await clients(turnserver, turn["username"], turn["credential"], host="::1")
    assert await client.allocate(ipv6=True) is None
    assert client.relayed[0] == "::1"
    refused = {address: await client.permission(address) for address in REFUSED_IPV6}
    assert refused == dict.fromkeys(REFUSED_IPV6, 403)
    assert await client.permission(UNSPECIFIED[6]) == 403
    allowed = {address: await client.permission(address) for address in PUBLIC_IPV6}
    assert allowed == dict.fromkeys(PUBLIC_IPV6, None)
