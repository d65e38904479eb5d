"""devops/local/turnserver.conf is a real coturn configuration, and a safe one.

Debian's `turnserver` (package coturn) is started with that very file (`-c`), plus command-line
options for what differs where it runs: loopback addresses and free ports in place of the
pod's or the compose network's, the secret, a private database and pid file. Then:

- credentials the backend mints (`videoconf.turn`, from settings built as in production) allocate
  a relay over UDP and over TCP, in the relay range given, and `turnutils_uclient` relays data
  through two allocations with them; a wrong credential and an expired username are refused;
- the same over TLS, as the cluster serves `turns:` (the file's TLS listener with --cert and
  --pkey, here a throw-away self-signed certificate the test makes for the TURN host name and
  127.0.0.1, as the Secret social-media-turn-tls would hold): the listener presents that
  certificate (checked as a browser would, against the TURN host name), the backend's
  credentials allocate a relay through it and `turnutils_uclient -t -S` relays data through it,
  a wrong credential and an expired username are refused, a client offering only TLS 1.1 or
  1.0 is refused, and SIGUSR2 makes coturn present a renewed certificate while an allocation
  stays; without the certificate (the Secret not created yet: its optional volume is empty)
  coturn still starts and serves UDP and TCP, without TLS, saying why; compose's --no-tls
  leaves UDP and TCP alone;
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

What it cannot prove: the coturn/coturn image itself (this is Debian's 4.6.1 with Debian's
OpenSSL, the image is 4.6.2: same options), the load balancer (its 443 to the pod's 5349), a
real certificate from a public CA, browsers (their TURN over TLS, their certificate checks),
TLS-inspecting firewalls, and clients on other machines.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import ipaddress
import signal
import socket
import ssl
import struct
import sys
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aioice import stun
from aioice.turn import TurnClientTcpProtocol, TurnClientUdpProtocol
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from devopslib import ROOT, TURNSERVER_CONF, need_program, turnserver_options
from videoconf.config import Settings
from videoconf.turn import ice_servers, turn_credential, turn_username

WAIT = 20.0
SECRET = "devops-turnserver-conf-" + "t" * 32
RELAY_PORTS = 12
UDP_TRANSPORT = 0x11000000  # REQUESTED-TRANSPORT: UDP (17)
# The TURN host name of the manifests' TURN_URLS, which the certificate names.
TURN_HOST = "turn.social-media.example.com"
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
# How each place runs TLS: the cluster with the certificate of the Secret social-media-turn-tls
# (here a throw-away one, mounted where coturn.yaml mounts it: tls.crt and tls.key in a
# directory), compose with none (--no-tls, docker-compose.yml). "cluster-before-secret": the
# cluster before the Secret exists, its optional volume an empty directory.
TLS_PLACES = ("cluster", "compose", "cluster-before-secret")
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
        "no-dtls",
        "no-software-attribute",
        "no-rfc5780",
        "no-stun-backward-compatibility",
    ):
        assert options.get(flag) == [""], flag
    assert options["listening-port"] == ["3478"]
    # TURN over TLS on 5349 (the Service publishes it on 443); its certificate per place.
    assert options["tls-listening-port"] == ["5349"]
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
    # What differs where it runs is not here either: addresses, and TLS (the cluster's
    # certificate, compose's --no-tls).
    for per_place in ("listening-ip", "relay-ip", "external-ip", "cert", "pkey", "no-tls"):
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


def write_certificate(directory: Path) -> Path:
    """A throw-away self-signed certificate for the TURN host name and 127.0.0.1, and its key,
    as `kubectl create secret tls` puts them in the Secret's volume: tls.crt and tls.key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TURN_HOST)])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName(TURN_HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        # Its own trust anchor: the clients here trust exactly this certificate.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir()
    path = directory / "tls.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (directory / "tls.key").chmod(0o600)
    return path


def tls_context(certificate: Path) -> ssl.SSLContext:
    """A client's TLS: the certificate chain and the host name are checked, against the one
    certificate this test trusts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(certificate)
    return context


@dataclass
class TurnServer:
    port: int
    relay_ports: range
    relay_address: str  # what clients get as their relay address (IPv4)
    ipv6: bool
    process: asyncio.subprocess.Process
    tls_port: int | None = None  # TURN over TLS, None where TLS is off (compose)
    certificate: Path | None = None  # what it presents there (None: no certificate)
    output: bytes = b""


@pytest.fixture
async def turnserver(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[TurnServer]:
    """Debian's turnserver with the file, as in the cluster (or, with the parameter
    "compose", as in docker-compose.yml; "cluster-before-secret", as in the cluster without
    its TLS Secret), on loopback and free ports."""
    place = getattr(request, "param", "cluster")
    assert place in TLS_PLACES, place
    binary = need_program("turnserver", "apt-get install coturn")
    port, relays = helpers.free_port(), helpers.free_udp_range(RELAY_PORTS)
    ipv6 = loopback_ipv6()
    addresses = ["127.0.0.1", "::1"] if ipv6 else ["127.0.0.1"]
    tls_port, certificate, tls = None, None, ["--no-tls"]
    if place != "compose":
        tls_port, mounted = helpers.free_port(), tmp_path / "coturn-tls"
        if place == "cluster":
            certificate = write_certificate(mounted)
        else:
            mounted.mkdir()  # the optional Secret volume, empty
        tls = [
            f"--tls-listening-port={tls_port}",
            f"--cert={mounted / 'tls.crt'}",
            f"--pkey={mounted / 'tls.key'}",
        ]
    relay_place = "compose" if place == "compose" else "cluster"
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
        *tls,
        # The relay's own address, and loopback for it (see the top of this file).
        *PLACES[relay_place],
        "--allow-loopback-peers",
        f"--userdb={tmp_path / 'turndb'}",
        f"--pidfile={tmp_path / 'turnserver.pid'}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
    )
    relay_address = EXTERNAL_IP if relay_place == "cluster" else "127.0.0.1"
    relay_ports = range(relays, relays + RELAY_PORTS)
    server = TurnServer(
        port, relay_ports, relay_address, ipv6, process, tls_port=tls_port, certificate=certificate
    )
    try:
        deadline = time.monotonic() + WAIT
        while not await helpers.answers_stun(port):
            if process.returncode is not None or time.monotonic() > deadline:
                output = (await helpers.stop(process)).decode(errors="replace")
                raise AssertionError(f"turnserver -c {TURNSERVER_CONF} did not start:\n{output}")
            await asyncio.sleep(0.1)
        yield server
    finally:
        # Added to: a test may have stopped it already, to read what it said.
        server.output += await helpers.stop(process)
    assert SECRET.encode() not in server.output, "the TURN secret must never be logged"


def backend_credentials(server: TurnServer) -> dict[str, Any]:
    """A signed-in participant's TURN entry, as the backend builds it from its environment."""
    urls = [
        f"turn:127.0.0.1:{server.port}?transport=udp",
        f"turn:127.0.0.1:{server.port}?transport=tcp",
    ]
    if server.tls_port is not None:
        urls.append(f"turns:127.0.0.1:{server.tls_port}?transport=tcp")
    settings = Settings.from_env(
        {
            "TURN_URLS": ",".join(urls),
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
        if transport == "tls":
            # turns: the TLS listener, its certificate checked against the TURN host name.
            assert server.tls_port is not None and server.certificate is not None
            address = (host, server.tls_port)
            inner, protocol = await loop.create_connection(
                lambda: TurnClientTcpProtocol(address, **options),
                host=host,
                port=server.tls_port,
                ssl=tls_context(server.certificate),
                server_hostname=TURN_HOST,
                ssl_handshake_timeout=WAIT,
            )
        elif transport == "tcp":
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


# What turnutils_uclient prints once its TLS handshake is done. coturn's TLS port also takes
# plain TCP (it tells them apart), so a relay through it alone does not show TLS was used.
UCLIENT_TLS_DONE = "client session connected with cipher"


async def uclient_tls(server: TurnServer, username: str, password: str) -> Any:
    """turnutils_uclient over TLS (-t: TCP to the server, -S: TLS), otherwise as the backend
    tests' helpers.uclient: two allocations (-y), one message from one relay to the other. It
    does not check the server's certificate (its -E does not make it fail on a wrong one):
    tls_handshake and aioice's client here do."""
    assert server.tls_port is not None
    need_program("turnutils_uclient", "apt-get install coturn")
    return await helpers.uclient(server.tls_port, username, password, "-t", "-S")


async def tls_handshake(
    port: int, certificate: Path | None, maximum: ssl.TLSVersion | None = None
) -> str:
    """The TLS version a client checking `certificate` and the TURN host name negotiates with
    127.0.0.1:port (with None: any certificate, whether TLS answers at all); raises when no
    TLS answers there. With `maximum`, the client offers versions up to that one only, old
    ones included (its own OpenSSL would not offer TLS 1.0 or 1.1 otherwise)."""
    if certificate is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = tls_context(certificate)
    if maximum is not None:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():  # Python deprecates naming them; that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = maximum
    _, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=TURN_HOST), 5
    )
    try:
        version = writer.get_extra_info("ssl_object").version()
        assert isinstance(version, str)
        return version
    finally:
        writer.close()


async def test_turns_relays_with_the_backend_credentials_and_refuses_others(
    turnserver: TurnServer, clients: Any
) -> None:
    """TURN over TLS, as the cluster serves turns: (the Service's 443 is coturn's
    tls-listening-port, here a free port)."""
    assert turnserver.tls_port is not None and turnserver.certificate is not None
    turn = backend_credentials(turnserver)
    assert turn["urls"][-1] == f"turns:127.0.0.1:{turnserver.tls_port}?transport=tcp"
    username, password = turn["username"], turn["credential"]
    # The listener presents the mounted certificate, valid for the TURN host name (the client
    # checks both), over TLS 1.2 or newer; a client offering only TLS 1.1 or 1.0 is refused by
    # the server: an alert from it, not a local error of the client (turnserver.conf says why
    # no switch of coturn's does this).
    # (Debian's 4.6.1 tops out at TLS 1.2; newer builds negotiate 1.3.)
    best = await tls_handshake(turnserver.tls_port, turnserver.certificate)
    assert best in {"TLSv1.2", "TLSv1.3"}, best
    tls12 = ssl.TLSVersion.TLSv1_2
    assert await tls_handshake(turnserver.tls_port, turnserver.certificate, tls12) == "TLSv1.2"
    for old in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
        with pytest.raises(ssl.SSLError) as refused:
            await tls_handshake(turnserver.tls_port, turnserver.certificate, old)
        assert str(refused.value.reason).startswith("TLSV1_ALERT_"), (old, refused.value)
    client = await clients(turnserver, username, password, "tls")
    assert await client.allocate() is None
    # A UDP relay, as over UDP and TCP: TLS is only the way from the browser to coturn.
    assert client.relayed[0] == turnserver.relay_address == EXTERNAL_IP
    assert client.relayed[1] in turnserver.relay_ports, client.relayed

    wrong = turn_credential("not-the-secret-" + "x" * 32, username)
    assert await (await clients(turnserver, username, wrong, "tls")).allocate() == 401
    client_id = username.partition(":")[2]
    expired = turn_username(client_id, int(time.time()) - 60)
    signed = turn_credential(SECRET, expired)
    assert await (await clients(turnserver, expired, signed, "tls")).allocate() == 401

    # turnutils_uclient over TLS: data from one relay to the other with the backend's
    # credentials; nothing with a wrong one.
    outcome = await uclient_tls(turnserver, username, password)
    assert outcome.code == 0, outcome.output
    assert UCLIENT_TLS_DONE in outcome.output, outcome.output
    assert helpers.relayed_messages(outcome) > 0, outcome.output
    helpers.assert_refused(await uclient_tls(turnserver, username, wrong))


async def test_sigusr2_reloads_a_renewed_certificate_and_keeps_relays(
    turnserver: TurnServer, clients: Any, tmp_path: Path
) -> None:
    """A renewed Secret (the kubelet swaps the files in the volume): coturn keeps presenting
    the certificate it loaded until SIGUSR2, then presents the new one; an allocation made
    before stays usable."""
    assert turnserver.tls_port is not None and turnserver.certificate is not None
    turn = backend_credentials(turnserver)
    client = await clients(turnserver, turn["username"], turn["credential"], "tls")
    assert await client.allocate() is None
    old = tmp_path / "old.crt"
    old.write_bytes(turnserver.certificate.read_bytes())
    renewed = write_certificate(tmp_path / "renewed")
    for name in ("tls.crt", "tls.key"):
        (turnserver.certificate.parent / name).write_bytes((renewed.parent / name).read_bytes())
    with pytest.raises(ssl.SSLCertVerificationError):
        await tls_handshake(turnserver.tls_port, renewed)
    turnserver.process.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            await tls_handshake(turnserver.tls_port, renewed)
            break
        except ssl.SSLCertVerificationError:
            assert time.monotonic() < deadline, "coturn still presents the old certificate"
            await asyncio.sleep(0.1)
    with pytest.raises(ssl.SSLCertVerificationError):
        await tls_handshake(turnserver.tls_port, old)
    # The allocation made over the old TLS connection is still there.
    assert await client.permission(PUBLIC_IPV4[0]) is None


@pytest.mark.parametrize("turnserver", ["cluster-before-secret", "compose"], indirect=True)
async def test_without_a_certificate_turn_works_without_tls(
    turnserver: TurnServer, clients: Any
) -> None:
    """Before the Secret social-media-turn-tls exists (the optional volume is empty), coturn
    starts anyway and serves UDP and TCP as before, and says why it has no TLS; compose turns
    TLS off (--no-tls) and serves UDP and TCP too."""
    turn = backend_credentials(turnserver)
    for transport in ("udp", "tcp"):
        client = await clients(turnserver, turn["username"], turn["credential"], transport)
        assert await client.allocate() is None, transport
    if turnserver.tls_port is None:
        return
    # Nothing answers TLS where the listener would be.
    with pytest.raises((OSError, TimeoutError)):
        await tls_handshake(turnserver.tls_port, None)
    turnserver.output += await helpers.stop(turnserver.process)
    assert b"cannot start TLS and DTLS listeners" in turnserver.output, turnserver.output


@pytest.mark.parametrize("turnserver", ["cluster", "compose"], indirect=True)
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
