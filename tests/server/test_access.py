"""Access control on the gRPC server: a bearer token (health and reflection stay open), TLS and
mutual TLS with certificates made here, and the unix socket's file mode."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from turnout_simulator.server import Simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import EXAMPLE_CONFIG, point_at_simulator
from tests.server.helpers import generate_request, user

TOKEN = "test-token-0123456789abcdef"


def config(simulator: Simulator, env: dict[str, str] | None = None, **server: Any):
    import yaml

    from sidecar.config import parse_config

    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, simulator.root_url)
    raw["server"].update(server)
    return parse_config(raw, source="access-test", env=env or {})


async def started(cfg, **overrides: Any) -> Sidecar:
    sidecar = Sidecar(cfg, ListenOverrides(port=0, **overrides))
    await sidecar.start()
    return sidecar


@pytest.fixture
async def guarded(simulator: Simulator) -> AsyncIterator[Sidecar]:
    sidecar = await started(config(simulator, {"TURNOUT_TOKEN": TOKEN}, auth_token_env="TURNOUT_TOKEN"))
    yield sidecar
    await sidecar.stop(grace_s=0)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_a_call_without_the_token_is_unauthenticated(guarded):
    async with grpc.aio.insecure_channel(guarded.address) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        for metadata in ((), bearer("wrong-token-0123456789abcdef"), (("authorization", TOKEN),)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Generate(generate_request(), metadata=metadata)
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "authorization: Bearer <token>" in (info.value.details() or "")
            status = rpc_status.from_call(info.value)
            assert status is not None
            reason = error_details_pb2.ErrorInfo()
            assert status.details[0].Unpack(reason)
            assert (reason.reason, reason.domain) == ("UNAUTHENTICATED", "turnout.dev")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ListModels(pb.ListModelsRequest())
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetBudgets(pb.GetBudgetsRequest())
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        stream = stub.GenerateStream(pb.GenerateStreamRequest(messages=[user("hi")]))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stream:
                pass
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_a_call_with_the_token_is_served(guarded):
    async with grpc.aio.insecure_channel(guarded.address) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        response = await stub.Generate(generate_request(), metadata=bearer(TOKEN))
        assert response.output.text
        lowercase = (("authorization", f"bearer {TOKEN}"),)
        assert (await stub.ListModels(pb.ListModelsRequest(), metadata=lowercase)).models
        events = [
            e
            async for e in stub.GenerateStream(
                pb.GenerateStreamRequest(messages=[user("hi")]), metadata=bearer(TOKEN)
            )
        ]
        assert events[-1].HasField("end")


async def test_health_and_reflection_stay_open(guarded):
    async with grpc.aio.insecure_channel(guarded.address) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        answers = [a async for a in reflection.ServerReflectionInfo(iter([ask]))]
        names = {s.name for s in answers[0].list_services_response.service}
        assert "turnout.v1.RouterService" in names


async def test_a_host_off_loopback_with_the_token(simulator):
    """Deliberately exposed: 0.0.0.0 with a token serves, and still asks every caller for it."""
    cfg = config(simulator, {"TURNOUT_TOKEN": TOKEN}, host="0.0.0.0", auth_token_env="TURNOUT_TOKEN")
    sidecar = await started(cfg)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{sidecar.server.port}") as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ListModels(pb.ListModelsRequest())
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert (await stub.ListModels(pb.ListModelsRequest(), metadata=bearer(TOKEN))).models
    finally:
        await sidecar.stop(grace_s=0)


# --------------------------------------------------------------------------------------------- TLS


def _key_and_cert(
    name: str, issuer: tuple[Any, x509.Certificate] | None = None, *, ca: bool = False
) -> tuple[Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    signer_key, signer_name = (key, subject) if issuer is None else (issuer[0], issuer[1].subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return key, builder.sign(signer_key, hashes.SHA256())


def _pem(key: Any, cert: x509.Certificate) -> tuple[bytes, bytes]:
    return (
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        cert.public_bytes(serialization.Encoding.PEM),
    )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    """A CA, a server certificate it signed (for 127.0.0.1) and a client certificate it signed."""
    ca = _key_and_cert("turnout-test-ca", ca=True)
    server_key, server_cert = _pem(*_key_and_cert("127.0.0.1", ca))
    client_key, client_cert = _pem(*_key_and_cert("the-app", ca))
    ca_pem = ca[1].public_bytes(serialization.Encoding.PEM)
    files = {"ca": ca_pem, "server.key": server_key, "server.crt": server_cert}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {
        "dir": tmp_path,
        "ca": ca_pem,
        "client": (client_key, client_cert),
        "tls": {"cert_file": str(tmp_path / "server.crt"), "key_file": str(tmp_path / "server.key")},
    }


async def test_tls_on_a_host_off_loopback(simulator, pki):
    sidecar = await started(config(simulator, host="0.0.0.0", tls=pki["tls"]))
    try:
        target = f"127.0.0.1:{sidecar.server.port}"
        credentials = grpc.ssl_channel_credentials(root_certificates=pki["ca"])
        async with grpc.aio.secure_channel(target, credentials) as channel:
            response = await pb_grpc.RouterServiceStub(channel).Generate(generate_request())
            assert response.output.text
        async with grpc.aio.insecure_channel(target) as channel:  # plaintext: no handshake, no call
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pb_grpc.RouterServiceStub(channel).ListModels(pb.ListModelsRequest(), timeout=5)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        await sidecar.stop(grace_s=0)


async def test_mutual_tls_needs_a_client_certificate(simulator, pki):
    tls = {**pki["tls"], "client_ca_file": str(pki["dir"] / "ca")}
    sidecar = await started(config(simulator, host="0.0.0.0", tls=tls))
    try:
        target = f"127.0.0.1:{sidecar.server.port}"
        anonymous = grpc.ssl_channel_credentials(root_certificates=pki["ca"])
        async with grpc.aio.secure_channel(target, anonymous) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pb_grpc.RouterServiceStub(channel).ListModels(pb.ListModelsRequest(), timeout=5)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        client_key, client_cert = pki["client"]
        known = grpc.ssl_channel_credentials(pki["ca"], client_key, client_cert)
        async with grpc.aio.secure_channel(target, known) as channel:
            assert (await pb_grpc.RouterServiceStub(channel).ListModels(pb.ListModelsRequest())).models
    finally:
        await sidecar.stop(grace_s=0)


# ------------------------------------------------------------------------------------- unix socket


@pytest.mark.parametrize(("mode", "expected"), [(None, 0o600), ("0660", 0o660)])
async def test_the_unix_socket_is_owner_only_by_default(simulator, tmp_path, mode, expected):
    path = tmp_path / "turnout.sock"
    server = {"unix_socket": str(path)} | ({"unix_socket_mode": mode} if mode else {})
    sidecar = await started(config(simulator, **server))
    try:
        assert stat.S_IMODE(path.stat().st_mode) == expected
        async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
            assert (await pb_grpc.RouterServiceStub(channel).ListModels(pb.ListModelsRequest())).models
    finally:
        await sidecar.stop(grace_s=0)


# ------------------------------------------------------------------- the CLI clients (turnout ...)


def cli(*argv: str) -> Any:
    """`turnout ARGV` in a thread: its blocking gRPC client must not stall the sidecar's loop."""
    from sidecar.cli import main

    return asyncio.to_thread(main, list(argv))


async def test_the_cli_sends_the_token_from_an_environment_variable(guarded, capsys, monkeypatch):
    monkeypatch.setenv("MY_TURNOUT_TOKEN", TOKEN)
    token = ("--token-env", "MY_TURNOUT_TOKEN")
    assert await cli("models", "--target", guarded.address, "--timeout", "10") == 1
    assert "error: UNAUTHENTICATED" in capsys.readouterr().err
    assert await cli("models", "--target", guarded.address, *token) == 0
    assert "gpt-4o-mini" in capsys.readouterr().out
    assert await cli("route", "--target", guarded.address, *token, "hello") == 0
    assert "-- decision:" in capsys.readouterr().err
    assert await cli("generate", "--target", guarded.address, *token, "hello") == 0
    assert await cli("generate", "--stream", "--target", guarded.address, *token, "hello") == 0
    out, err = capsys.readouterr()
    assert out.strip()
    assert "served by" in err
    assert TOKEN not in out + err


async def test_the_cli_over_tls_and_mutual_tls_with_a_token(simulator, pki, capsys, monkeypatch):
    client_key, client_cert = pki["client"]
    (pki["dir"] / "client.key").write_bytes(client_key)
    (pki["dir"] / "client.crt").write_bytes(client_cert)
    monkeypatch.setenv("MY_TURNOUT_TOKEN", TOKEN)
    tls = {**pki["tls"], "client_ca_file": str(pki["dir"] / "ca")}
    env = {"TURNOUT_TOKEN": TOKEN}
    sidecar = await started(config(simulator, env, host="0.0.0.0", tls=tls, auth_token_env="TURNOUT_TOKEN"))
    try:
        target = ("--target", f"127.0.0.1:{sidecar.server.port}", "--timeout", "10")
        ca = ("--tls-ca", str(pki["dir"] / "ca"))
        mine = ("--tls-cert", str(pki["dir"] / "client.crt"), "--tls-key", str(pki["dir"] / "client.key"))
        token = ("--token-env", "MY_TURNOUT_TOKEN")
        assert await cli("models", *target, *token) == 1  # plaintext to a TLS port
        assert "error: UNAVAILABLE" in capsys.readouterr().err
        assert await cli("models", *target, *ca, *token) == 1  # no client certificate
        assert "error: UNAVAILABLE" in capsys.readouterr().err
        assert await cli("models", *target, *ca, *mine) == 1  # a certificate, but no token
        assert "error: UNAUTHENTICATED" in capsys.readouterr().err
        assert await cli("models", *target, *ca, *mine, *token) == 0
        assert "gpt-4o-mini" in capsys.readouterr().out
        assert await cli("generate", "--stream", *target, *ca, *mine, *token, "hello") == 0
        assert "served by" in capsys.readouterr().err
    finally:
        await sidecar.stop(grace_s=0)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--token-env", "NO_SUCH_TURNOUT_VARIABLE"], "--token-env: environment variable NO_SUCH_TURNOUT_"),
        (["--tls-cert", "client.crt"], "--tls-cert and --tls-key go together"),
        (["--tls-ca", "/nonexistent/ca.pem"], "--tls-ca: cannot read /nonexistent/ca.pem: No such file"),
    ],
)
async def test_the_cli_refuses_access_options_it_cannot_use(capsys, options, expected):
    assert await cli("models", "--target", "127.0.0.1:1", *options) == 2
    err = capsys.readouterr().err
    assert err.startswith("turnout: ")
    assert expected in err
    assert "Traceback" not in err
